"""Three-body benchmark: integrator throughput, env overhead, and the agent's Pareto standing.

1. Numba Hermite vs REBOUND IAS15: force evaluations per second on one problem, as a ratio.
2. Env steps per second and the env's overhead: the harness's ``wall_time`` (seconds in ``env.step``) of fixed-η
   episodes against ``ThreeBodyProcess.advance`` alone on the same initial conditions and intervals.
3. Trained agent vs the fixed-η sweep vs the IAS15 ε sweep on held-out initial conditions (the
   harness table, its Pareto plot, and the agent's cost and error ratios against the fixed-η curve),
   with the lookahead oracle (``adaptstep.threebody.oracle``) as a reference for what any per-interval
   choice of η could gain.
4. η-jitter sensitivity: the same mean η with random per-interval jitter, to measure what changing η
   between intervals costs in accuracy (on the process itself).
"""

from __future__ import annotations

import argparse
import inspect
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from adaptstep.agents.training import train
from adaptstep.analysis import sweep_comparison
from adaptstep.core.bench import Benchmark
from adaptstep.core.report import markdown_table
from adaptstep.core.settings import parse_settings
from adaptstep.evaluation import evaluate, summarize
from adaptstep.plotting import controller_family, plot_pareto
from adaptstep.specs import env_task_spec
from adaptstep.threebody import YEAR, ThreeBodyProcess, reference_initial_conditions
from adaptstep.threebody.benchmark import force_throughput
from adaptstep.threebody.env import ThreeBodyEnv

ENV_ID = "adaptstep/ThreeBody-v0"
DEFAULT_MODEL = Path("runs/bench-threebody/agent/model.zip")  # trained with agents/ppo.yml when absent
OVERHEAD_ETAS = (0.01, 0.001)
PARETO_COLUMNS = ["episodes", "failures", "cost_median", "cost_q25", "cost_q75", "energy_error_median",
                  "energy_error_q25", "energy_error_q75", "wall_time_median", "pareto"]


class ThreeBodyBenchmark(Benchmark):
    """Three-body: integrator throughput, env overhead, the agent against the fixed-η and IAS15 sweeps."""

    name = "threebody"
    default_episodes = 100
    default_seed = 10_000
    packages = ("numpy", "numba", "rebound", "torch", "stable-baselines3")

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """The agent, the env's settings, the throughput run's length and the oracle rows."""
        parser.add_argument("--model", type=Path, default=DEFAULT_MODEL,
                            help=f"trained model.zip (default {DEFAULT_MODEL}, trained with agents/ppo.yml when "
                                 "absent)")
        parser.add_argument("--env-kwarg", action="append", default=[], metavar="KEY=VALUE")
        parser.add_argument("--throughput-t-end", type=float, default=100.0, help="N-body time of the throughput run")
        parser.add_argument("--oracle-mu", type=float, nargs="*", default=[1e-9, 1e-10, 1e-11],
                            help="Lagrange multipliers of the lookahead-oracle reference rows (none: skip)")

    def heading(self, args: argparse.Namespace) -> str:
        """The section's heading."""
        return f"## Three-body (`{ENV_ID}`)"

    def measure(self, args: argparse.Namespace) -> pd.DataFrame:
        """The harness table of the agent, its IAS15 transfer, the task spec's baselines and the oracles; the
        throughput, overhead and jitter tables in its ``attrs``."""
        spec = env_task_spec(ENV_ID)
        env_kwargs = {**spec["kwargs"], **parse_settings(args.env_kwarg, "--env-kwarg")}
        throughput, jitter = throughput_table(args.throughput_t_end), eta_jitter()
        overhead = pd.DataFrame([env_overhead(env_kwargs, eta) for eta in OVERHEAD_ETAS])
        agent = str(trained_agent(args.model, env_kwargs))
        print(f"Pareto: {args.episodes} held-out initial conditions from seed {args.seed}")
        transfer = f"{agent}@backend=rebound-ias15"  # the reference paper's transfer to another integrator
        table = evaluate(ENV_ID, [agent, transfer, *spec["baselines"], *oracle_specs(args.oracle_mu)],
                         episodes=args.episodes, seed=args.seed, env_kwargs=env_kwargs)
        table.attrs.update(throughput=throughput, overhead=overhead, jitter=jitter, agent=agent)
        return table

    def render(self, table: pd.DataFrame, args: argparse.Namespace) -> str:
        """The throughput, overhead, Pareto, sweep-comparison and jitter subsections, with the Pareto plot."""
        figure, figure_link = self.figure(args)
        plot_pareto(table, figure, title=f"ThreeBody-v0: {args.episodes} held-out initial conditions",
                    cost_unit="force evaluations")
        agent = table.attrs["agent"]
        summary = summarize(table)
        comparisons = sweep_comparisons(summary, [agent, *oracle_specs(args.oracle_mu)])
        comparison = comparisons.set_index("controller").loc[agent]
        met = comparison["cost_ratio"] <= 0.7 or comparison["error_ratio"] >= 10
        last_seed = args.seed + args.episodes - 1
        return f"""### Integrator throughput (reference IC 0, t = {args.throughput_t_end:g})
{markdown_table(table.attrs["throughput"])}

REBOUND is timed without the counting callback (its evaluations are counted in a separate, identical run).

### Env overhead (whole episodes of 5 initial conditions at a fixed η)
`env_seconds`: `env.step` through `gym.make`'s wrappers (the harness's `wall_time`); `integration_seconds`:
`ThreeBodyProcess.advance` alone over the same intervals; `overhead` = env_seconds / integration_seconds − 1.

{markdown_table(table.attrs["overhead"])}

### Agent vs fixed η vs IAS15 ε ({args.episodes} held-out initial conditions, seeds {args.seed}–{last_seed})
Agent: `{agent}`; with `@backend=rebound-ias15` the same policy drives IAS15 (its actions rescaled onto ε's
range), the reference paper's transfer experiment. Cost is force evaluations per episode; medians with quartiles.

{markdown_table(summary[PARETO_COLUMNS].reset_index())}

Against the fixed-η curve (log-log interpolation of medians): the agent needs
**{comparison['cost_ratio']:.2f}×** the force evaluations of the fixed η with its median error, and at its
median cost its median error is **{comparison['error_ratio']:.2f}×** lower. Target (≤ 0.7× cost, or ≥ 10×
lower error): **{'met' if met else 'not met'}**. Per-episode table: `{self.table_file(args)[1]}`.

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

{markdown_table(table.attrs["jitter"])}
"""


def oracle_specs(mus: list[float]) -> list[str]:
    """The controller specs of the lookahead-oracle rows."""
    return [f"oracle:mu={mu:g}" for mu in mus]


def trained_agent(model: Path, env_kwargs: dict[str, Any]) -> Path:
    """``model``, trained first with agents/ppo.yml into its folder when it does not exist."""
    if not model.exists():
        print(f"training an agent with agents/ppo.yml into {model.parent}")
        train(ENV_ID, "ppo", model.parent, seed=0, env_kwargs=env_kwargs)
    return model


def sweep_comparisons(summary: pd.DataFrame, controllers: list[str]) -> pd.DataFrame:
    """Each controller's cost and error ratios against the fixed-η sweep's curve of medians."""
    fixed = [name for name in summary.index if controller_family(name) == "fixed"]
    ratios = {name: sweep_comparison(summary, name, fixed, "energy_error") for name in controllers}
    return pd.DataFrame(ratios).T.rename_axis("controller").reset_index()


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


def env_overhead(env_kwargs: dict[str, Any], eta: float, episodes: int = 5, repeats: int = 3) -> dict[str, float]:
    """Seconds in ``env.step`` (the harness's ``wall_time``) of ``fixed:eta`` episodes on seeds 0, 1, … against
    ``ThreeBodyProcess.advance`` alone on the same initial conditions and intervals.

    Each side is the best of ``repeats`` timings, so a busy moment of the machine does not count; a first, untimed
    episode compiles and warms up.
    """
    fixed_eta_episodes(env_kwargs, eta, 1)
    runs = [fixed_eta_episodes(env_kwargs, eta, episodes) for _ in range(repeats)]
    env_best, rows = min(run["wall_time"].sum() for run in runs), runs[0]
    backend, interval = (env_setting(env_kwargs, name) for name in ("backend", "interval"))
    pure_best = min(integration_seconds(rows, backend, interval, eta) for _ in range(repeats))
    steps = int(rows["steps"].sum())
    return {"eta": eta, "steps": steps, "steps_per_second": steps / env_best, "env_seconds": env_best,
            "integration_seconds": pure_best, "overhead": env_best / pure_best - 1.0}


def fixed_eta_episodes(env_kwargs: dict[str, Any], eta: float, episodes: int) -> pd.DataFrame:
    """The harness rows of ``fixed:eta`` on seeds 0, 1, …"""
    return evaluate(ENV_ID, [f"fixed:eta={eta:g}"], episodes=episodes, seed=0, env_kwargs=env_kwargs, progress=False)


def env_setting(env_kwargs: dict[str, Any], name: str) -> Any:
    """The env's setting ``name``: from ``env_kwargs``, else ``ThreeBodyEnv``'s default."""
    return env_kwargs.get(name, inspect.signature(ThreeBodyEnv).parameters[name].default)


def integration_seconds(rows: pd.DataFrame, backend: str, interval: float, eta: float) -> float:
    """Seconds of ``ThreeBodyProcess.advance`` over the intervals of the harness ``rows`` (each episode's initial
    condition from its ``system_seed``; intervals of ``interval`` up to its final ``time``)."""
    seconds = 0.0
    for system_seed, steps, end in rows[["system_seed", "steps", "time"]].itertuples(index=False):
        process = ThreeBodyProcess(reference_initial_conditions(int(system_seed)), backend)
        for length in np.diff(np.minimum(np.arange(steps + 1) * interval, end)):
            started = time.perf_counter()
            process.advance(float(length), eta)
            seconds += time.perf_counter() - started
    return seconds


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
