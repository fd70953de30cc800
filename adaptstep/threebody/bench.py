"""Three-body benchmark: integrator throughput, env overhead, and the agent's Pareto standing.

1. Numba Hermite vs REBOUND IAS15: force evaluations per second on one problem, as a ratio.
2. Env steps per second and the env's overhead over pure integration of the same intervals.
3. Trained agent vs the fixed-η sweep vs the IAS15 ε sweep on held-out initial conditions (the
   harness table, its Pareto plot, and the agent's cost and error ratios against the fixed-η curve),
   with the lookahead oracle (``adaptstep.threebody.oracle``) as a reference for what any per-interval
   choice of η could gain.
4. η-jitter sensitivity: the same mean η with random per-interval jitter, to measure what changing η
   between intervals costs in accuracy.
"""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd

from adaptstep.analysis import sweep_comparison
from adaptstep.core.report import (
    machine_description,
    markdown_table,
    section_figure,
    write_section,
)
from adaptstep.evaluation import evaluate, summarize
from adaptstep.io import atomic_path
from adaptstep.plotting import controller_family, plot_pareto
from adaptstep.specs import parse_env_kwargs, task_spec
from adaptstep.threebody import YEAR, ThreeBodyProcess, reference_initial_conditions
from adaptstep.threebody.benchmark import force_throughput

ENV_ID = "adaptstep/ThreeBody-v0"
FIGURE = "threebody_pareto"  # benchmarks/FIGURE.png beside BENCHMARKS.md, embedded in its section


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", help="trained model.zip (default: train agents/ppo.yml into OUT_DIR/agent)")
    parser.add_argument("--episodes", type=int, default=100, help="held-out initial conditions")
    parser.add_argument("--seed", type=int, default=10_000, help="first held-out seed (training never sees them)")
    parser.add_argument("--env-kwarg", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--out-dir", default="runs/bench-threebody", help="the CSV and a trained agent go here")
    parser.add_argument("--benchmarks-file", default="BENCHMARKS.md")
    parser.add_argument("--throughput-t-end", type=float, default=100.0, help="N-body time of the throughput run")
    parser.add_argument("--oracle-mu", type=float, nargs="*", default=[1e-9, 1e-10, 1e-11],
                        help="Lagrange multipliers of the lookahead-oracle reference rows (none: skip)")


def throughput_table(t_end: float) -> pd.DataFrame:
    """Force evaluations per second of each backend on reference IC 0, at their default-accuracy settings."""
    system = reference_initial_conditions(0)
    rows = []
    for backend, parameter in (("hermite", 0.01), ("rebound-ias15", 1e-9)):
        result = force_throughput(backend, system, t_end=t_end, parameter=parameter)
        rows.append({"backend": backend, "parameter": parameter, **result})
    table = pd.DataFrame(rows)
    table["ratio_to_ias15"] = table["evaluations_per_second"] / table["evaluations_per_second"].iloc[-1]
    return table


def env_overhead(env_kwargs: dict, eta: float = 0.01, episodes: int = 5, repeats: int = 3) -> dict[str, float]:
    """Time env.step over whole episodes against ``ThreeBodyProcess.advance`` alone on the same intervals.

    Each side is the best of ``repeats`` timings, so a busy moment of the machine does not count.
    """
    env = gym.make(ENV_ID, **env_kwargs)
    action = env.unwrapped.action_from_parameter("eta", eta)
    env.reset(seed=0)
    env.step(action)  # compile and warm up
    step_seconds, intervals = [], {}
    for _ in range(repeats):
        seconds = 0.0
        for seed in range(episodes):
            _, info = env.reset(seed=seed)
            lengths, done = intervals.setdefault(info["system_seed"], []), False
            while not done:
                before = env.unwrapped.process.time
                started = time.perf_counter()
                _, _, terminated, truncated, info = env.step(action)
                seconds += time.perf_counter() - started
                lengths.append(info["time"] - before)
                done = terminated or truncated
        step_seconds.append(seconds)
    backend = env.unwrapped.backend
    env.close()
    pure_seconds = []
    for _ in range(repeats):
        seconds = 0.0
        for system_seed, lengths in intervals.items():
            process = ThreeBodyProcess(reference_initial_conditions(system_seed), backend)
            for length in lengths[: len(lengths) // repeats]:
                started = time.perf_counter()
                process.advance(length, eta)
                seconds += time.perf_counter() - started
        pure_seconds.append(seconds)
    steps = sum(len(lengths) for lengths in intervals.values()) // repeats
    env_best, pure_best = min(step_seconds), min(pure_seconds)
    return {"steps": steps, "steps_per_second": steps / env_best, "env_seconds": env_best,
            "integration_seconds": pure_best, "overhead": env_best / pure_best - 1.0}


def eta_jitter(eta: float = 0.005, jitters: tuple[float, ...] = (0.0, 0.02, 0.08, 0.2), systems: int = 60,
               intervals: int = 100, interval: float = 0.1 * YEAR) -> pd.DataFrame:
    """Median final |ΔE/E0| and cost when log10 η gets Gaussian jitter of the given std at every interval."""
    system_seeds = np.random.default_rng(1).integers(2**31, size=systems)
    rows = []
    for jitter in jitters:
        noise = np.random.default_rng(0)
        errors, costs = [], []
        for system_seed in system_seeds:
            process = ThreeBodyProcess(reference_initial_conditions(int(system_seed)))
            for _ in range(intervals):
                process.advance(interval, eta * 10 ** (jitter * noise.standard_normal()))
            errors.append(process.energy_error)
            costs.append(process.force_evaluations)
        rows.append({"jitter_decades": jitter, "energy_error_median": float(np.median(errors)),
                     "cost_median": float(np.median(costs))})
    table = pd.DataFrame(rows)
    table["error_vs_constant"] = table["energy_error_median"] / table["energy_error_median"].iloc[0]
    return table


def run(args: argparse.Namespace) -> None:
    out_dir = Path(args.out_dir)
    spec = task_spec(ENV_ID)
    env_kwargs = {**spec["kwargs"], **parse_env_kwargs(args.env_kwarg)}
    command = "adaptstep " + shlex.join(sys.argv[1:]) if sys.argv[0].endswith("adaptstep") else "adaptstep bench threebody"

    print("integrator throughput")
    throughput = throughput_table(args.throughput_t_end)
    print(throughput.to_string(index=False))

    print("η jitter sensitivity")
    jitter = eta_jitter()
    print(jitter.to_string(index=False))

    print("env overhead")
    overhead = pd.DataFrame([{"eta": eta, **env_overhead(env_kwargs, eta)} for eta in (0.01, 0.001)])
    print(overhead.to_string(index=False))

    model = args.model
    if model is None:
        from adaptstep.agents.training import train

        model = out_dir / "agent" / "model.zip"
        if not model.exists():
            print(f"training an agent with agents/ppo.yml into {model.parent}")
            train(ENV_ID, "ppo", model.parent, seed=0, env_kwargs=env_kwargs)
    print(f"Pareto: {args.episodes} held-out initial conditions from seed {args.seed}")
    agent = str(model)
    transfer = f"{agent}@backend=rebound-ias15"  # the reference paper's transfer to another integrator
    oracles = [f"oracle:mu={mu:g}" for mu in args.oracle_mu]
    table = evaluate(ENV_ID, [agent, transfer, *spec["baselines"], *oracles], episodes=args.episodes,
                     seed=args.seed, env_kwargs=env_kwargs)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / "pareto.csv") as temporary:
        table.to_csv(temporary, index=False)
    figure, figure_link = section_figure(args.benchmarks_file, FIGURE)
    plot_pareto(table, figure, title=f"ThreeBody-v0: {args.episodes} held-out initial conditions",
                cost_unit="force evaluations")

    summary = summarize(table)
    fixed = [name for name in summary.index if controller_family(name) == "fixed"]
    comparisons = pd.DataFrame({name: sweep_comparison(summary, name, fixed, "energy_error")
                                for name in [agent, *oracles]}).T.rename_axis("controller").reset_index()
    print(summary.to_string())
    print(comparisons.to_string(index=False))
    write_section(args.benchmarks_file, "threebody",
                  render(command, throughput, overhead, summary, agent, comparisons, jitter, out_dir, figure_link,
                         args))
    print(f"updated {args.benchmarks_file}")


def render(command, throughput, overhead, summary, agent, comparisons, jitter, out_dir, figure_link, args) -> str:
    columns = ["episodes", "failures", "cost_median", "cost_q25", "cost_q75", "energy_error_median",
               "energy_error_q25", "energy_error_q75", "wall_time_median", "pareto"]
    pareto = summary[columns].reset_index()
    comparison = comparisons.set_index("controller").loc[agent]
    met = comparison["cost_ratio"] <= 0.7 or comparison["error_ratio"] >= 10
    return f"""## Three-body (`adaptstep/ThreeBody-v0`)

Command: `{command}`
Machine: {machine_description()}

### Integrator throughput (reference IC 0, t = {args.throughput_t_end:g})
{markdown_table(throughput)}

REBOUND is timed without the counting callback (its evaluations are counted in a separate, identical run).

### Env overhead (whole episodes of 5 initial conditions at a fixed η)
`env_seconds`: `env.step` through `gym.make`'s wrappers; `integration_seconds`: `ThreeBodyProcess.advance` alone
over the same intervals; `overhead` = env_seconds / integration_seconds − 1.

{markdown_table(overhead)}

### Agent vs fixed η vs IAS15 ε ({args.episodes} held-out initial conditions, seeds {args.seed}–{args.seed + args.episodes - 1})
Agent: `{agent}`; with `@backend=rebound-ias15` the same policy drives IAS15 (its actions rescaled onto ε's
range), the reference paper's transfer experiment. Cost is force evaluations per episode; medians with quartiles.

{markdown_table(pareto)}

Against the fixed-η curve (log-log interpolation of medians): the agent needs
**{comparison['cost_ratio']:.2f}×** the force evaluations of the fixed η with its median error, and at its
median cost its median error is **{comparison['error_ratio']:.2f}×** lower. Target (≤ 0.7× cost, or ≥ 10×
lower error): **{'met' if met else 'not met'}**. Per-episode table: `{out_dir / 'pareto.csv'}`.

![Pareto plot]({figure_link})

Ratios to the fixed-η curve (`cost_ratio` < 1: cheaper at equal median error; `error_ratio` > 1: more accurate
at equal median cost; NaN outside the sweep's range). The `oracle` rows try every η of a grid on a copy of the
state before each interval and keep the best by force evaluations + |δE/E0|/μ; their trial integrations are
not counted, so they bound what a per-interval choice of η can gain:

{markdown_table(comparisons)}

### What changing η between intervals costs (60 reference initial conditions, mean η = 0.005)
log10 η gets Gaussian jitter of the given standard deviation at every 0.1-yr interval; the cost barely moves,
the error grows fast. Hermite at a constant η lets the energy errors of an encounter largely cancel; a
controller that varies η per interval pays for breaking that.

{markdown_table(jitter)}
"""
