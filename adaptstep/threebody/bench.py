"""Three-body benchmark: integrator throughput and the agent's Pareto standing (``--speed``: the env's timings).

1. Numba Hermite vs REBOUND IAS15: force evaluations per second on one problem, as a ratio.
2. Trained agents vs every classical row of the task spec (fixed η with both Hermite criteria, IAS15 ε per
   interval, and the whole episode in one call of IAS15, BS, Hermite, Aarseth's Hermite, leapfrog) on held-out
   initial conditions: the harness table, its Pareto plot with the classical rows' union lower envelope
   (``adaptstep.analysis.UnionEnvelope``), each agent's cost ratio at its median error and error ratio at its
   median cost against that envelope with paired bootstrap CIs over the initial conditions, and the older ratios
   against the fixed-η curve alone; the lookahead oracles (``adaptstep.threebody.oracle``, with Hermite and with
   IAS15) as a reference for what any per-interval choice of the parameter could gain.
3. η-jitter sensitivity: the same mean η with random per-interval jitter, to measure what changing η
   between intervals costs in accuracy (on the process itself).
"""

from __future__ import annotations

import argparse
import inspect
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from adaptstep.agents.training import train
from adaptstep.agents.controllers import RUN_FILE
from adaptstep.analysis import UnionEnvelope, envelope_comparison, sweep_comparison, sweep_name
from adaptstep.core.bench import Benchmark
from adaptstep.core.report import markdown_table
from adaptstep.core.settings import parse_settings
from adaptstep.evaluation import evaluate, summarize
from adaptstep.plotting import controller_family, plot_pareto
from adaptstep.specs import env_task_spec, load_yaml
from adaptstep.threebody import YEAR, ThreeBodyProcess, reference_initial_conditions
from adaptstep.threebody.benchmark import force_throughput
from adaptstep.threebody.env import ThreeBodyEnv
from adaptstep.threebody.speed import force_timings, ppo_timings, step_timings
from adaptstep.zoo import is_zoo_spec, resolve

ENV_ID = "adaptstep/ThreeBody-v0"
DEFAULT_MODEL = Path("runs/bench-threebody/agent/model.zip")  # trained with agents/ppo.yml when absent
TRANSFER = {"hermite": "rebound-ias15", "rebound-ias15": "hermite"}  # the first agent also drives the other one
# whole-episode IAS15 and BS runs between the task spec's ε (2 decades apart): their cost is far from a power law
# in ε, so the log-log line between the spec's points lies well above the runs in between (the envelope would flatter
# a controller there)
DENSE_SWEEPS = (*(f"whole:ias15,epsilon={e}" for e in ("3e-4", "1e-4", "3e-5", "3e-6", "1e-6", "3e-7", "3e-8", "1e-8")),
                *(f"whole:bs,epsilon={e}" for e in ("1e-7", "1e-9", "1e-11")))
TARGET_COST_RATIO = 0.7  # the goal: at most this share of the envelope's force evaluations at the agent's error
BOOTSTRAP_SEED = 0
PARETO_COLUMNS = ["episodes", "failures", "cost_median", "cost_q25", "cost_q75", "energy_error_median",
                  "energy_error_q25", "energy_error_q75", "wall_time_median", "pareto"]


class ThreeBodyBenchmark(Benchmark):
    """Three-body: integrator throughput, the agent against the fixed-η and IAS15 sweeps."""

    name = "threebody"
    default_episodes = 100
    default_seed = 10_000
    packages = ("numpy", "numba", "rebound", "torch", "stable-baselines3")

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """The agent, the env's settings, the throughput run's length and the oracle rows."""
        parser.add_argument("--model", type=Path, nargs="+", default=[DEFAULT_MODEL],
                            help=f"trained model.zip files or zoo:NAME specs, the first the headline agent (default "
                                 f"{DEFAULT_MODEL}, trained with agents/ppo.yml when absent); each runs on the "
                                 "backend it was trained "
                                 "with (its run.yaml)")
        parser.add_argument("--env-kwarg", action="append", default=[], metavar="KEY=VALUE")
        parser.add_argument("--throughput-t-end", type=float, default=100.0, help="N-body time of the throughput run")
        parser.add_argument("--oracle-mu", type=float, nargs="*", default=[1e-9, 1e-10, 1e-11],
                            help="Lagrange multipliers of the lookahead-oracle reference rows (none: skip)")
        parser.add_argument("--envelope-extra", nargs="*", default=list(DENSE_SWEEPS), metavar="SPEC",
                            help="classical rows added to the task spec's for the envelope (default: IAS15 and BS "
                                 "runs between the spec's ε values)")
        parser.add_argument("--ias15-oracle-mu", type=float, nargs="*", default=[1e-11, 1e-13],
                            help="Lagrange multipliers of lookahead-oracle rows choosing IAS15's ε (none: skip)")
        parser.add_argument("--speed", action="store_true",
                            help="only the speed timings (CPU thread time, interleaved rounds), into threebody-speed")
        parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds of the --speed timings (>= 5)")
        parser.add_argument("--resamples", type=int, default=1000,
                            help="bootstrap resamples of the initial conditions for the envelope ratios' CIs")

    def heading(self, args: argparse.Namespace) -> str:
        """The section's heading."""
        if args.speed:
            return f"## Three-body speed (`{ENV_ID}`: CPU thread time, interleaved rounds)"
        return f"## Three-body (`{ENV_ID}`)"

    def section(self, args: argparse.Namespace) -> str:
        """``threebody``, or ``threebody-speed`` with ``--speed`` (unless ``--section`` names another)."""
        return args.section or (f"{self.name}-speed" if args.speed else self.name)

    def measure(self, args: argparse.Namespace) -> pd.DataFrame:
        """The harness table of the agents, their transfer, the task spec's baselines and the oracles.

        With ``--speed``: only the timings of ``adaptstep.threebody.speed`` (the per-step table, its ratios, force
        evaluations and PPO steps per CPU-second in its ``attrs``).

        Returns:
            The per-episode table; the throughput and jitter tables and the row names are in its
            ``attrs``.
        """
        if args.speed:
            return speed_table(args.rounds)
        spec = env_task_spec(ENV_ID)
        env_kwargs = {**spec["kwargs"], **parse_settings(args.env_kwarg, "--env-kwarg")}
        throughput, jitter = throughput_table(args.throughput_t_end), eta_jitter()
        agents = [agent_spec(trained_agent(model, env_kwargs), env_kwargs) for model in args.model]
        print(f"Pareto: {args.episodes} held-out initial conditions from seed {args.seed}")
        transfer = transfer_spec(agents[0], env_kwargs)  # the reference paper's transfer to another integrator
        oracles = oracle_specs(args.oracle_mu, args.ias15_oracle_mu)
        extra = [name for name in args.envelope_extra if name not in spec["baselines"]]
        baselines = [*spec["baselines"], *extra]
        table = evaluate(ENV_ID, [*agents, transfer, *baselines, *oracles],
                         episodes=args.episodes, seed=args.seed, env_kwargs=env_kwargs)
        table.attrs.update(throughput=throughput, jitter=jitter, agent=agents[0], agents=agents,
                           transfer=transfer, baselines=baselines, extra=extra, oracles=oracles)
        return table

    def render(self, table: pd.DataFrame, args: argparse.Namespace) -> str:
        """The throughput, Pareto, union-envelope, fixed-η and jitter subsections, with the Pareto plot
        (with ``--speed``: the speed subsections)."""
        if args.speed:
            return render_speed(table)
        agent, agents, transfer = table.attrs["agent"], table.attrs["agents"], table.attrs["transfer"]
        baselines, oracles = table.attrs["baselines"], table.attrs["oracles"]
        summary = summarize(table)
        envelope = UnionEnvelope(baselines, summary.loc[baselines, "cost_median"],
                                 summary.loc[baselines, "energy_error_median"])
        figure, figure_link = self.figure(args)
        plot_pareto(table, figure, title=f"ThreeBody-v0: {args.episodes} held-out initial conditions",
                    cost_unit="force evaluations", envelope=envelope.curve(),
                    envelope_label="lower envelope of the classical rows", group=sweep_name)
        compared = [*agents, transfer, *oracles]
        frontier = envelope_comparison(table, compared, baselines, "energy_error", resamples=args.resamples,
                                       seed=BOOTSTRAP_SEED)
        headline = frontier.set_index("controller").loc[agent]
        comparisons = sweep_comparisons(summary, compared)
        last_seed = args.seed + args.episodes - 1
        sweeps = ", ".join(f"`{frontier_.name}`" for frontier_ in envelope.frontiers)
        return f"""### Integrator throughput (reference IC 0, t = {args.throughput_t_end:g})
{markdown_table(table.attrs["throughput"])}

REBOUND is timed without the counting callback (its evaluations are counted in a separate, identical run). The
env's own timings, in CPU thread time over interleaved rounds, are the `threebody-speed` section (`--speed`).

### Agents vs every classical row ({args.episodes} held-out initial conditions, seeds {args.seed}–{last_seed})
Agents: {", ".join(f"`{name}`" for name in agents)}; `{transfer}` is the first agent's policy driving the other
integrator (its actions rescaled onto that parameter's range), the reference paper's transfer experiment. The
classical rows are the task spec's (`envs/threebody.yaml`): fixed η with Hermite's and Aarseth's criteria and IAS15
ε, each set again at every interval, and the whole episode in one backend call (`whole:`, as users run the
integrators), plus the {len(table.attrs["extra"])} rows of `--envelope-extra` (by default whole-episode IAS15 and
BS runs between the spec's ε values: those lie 2 decades apart, and these integrators' cost is far from a power law
in ε, so the line between the spec's points would lie above the runs in between). Cost is force evaluations per episode; medians with quartiles.

{markdown_table(summary[PARETO_COLUMNS].reset_index())}

#### Against the union frontier of the classical rows
The frontier is the lower envelope of all {len(baselines)} classical rows: each sweep ({sweeps}) reduced to its
Pareto medians and joined log-log, then the pointwise minimum over the sweeps (the dashed line of the figure).
{envelope_sentence(headline, agent)} Target (≤ {TARGET_COST_RATIO:g}× the envelope's force evaluations at the
agent's median error): **{"met" if headline["cost_ratio"] <= TARGET_COST_RATIO else "not met"}**.
Per-episode table: `{self.table_file(args)[1]}`.

![Pareto plot]({figure_link})

Every agent, transfer and oracle row against the envelope. `cost_ratio`: the row's median force evaluations over
the envelope's at the row's median error (< 1: cheaper; NaN: no classical row reaches that error);
`error_ratio`: the envelope's median error at the row's median cost over the row's (> 1: more accurate). 95%
percentile CIs from {args.resamples} paired bootstrap resamples of the {args.episodes} initial conditions (every
row's medians, the envelope and the ratios recomputed each time); `p_behind`: the resamples' share with
`cost_ratio` > 1. `strongest_at_error`: the sweep that attains the envelope at the row's error, between the
measured points `compared_at_error`; `dominated_by`: measured classical rows with lower median cost and error.

{markdown_table(envelope_table(frontier))}

The envelope's measured points:

{markdown_table(envelope.points())}

#### Against the fixed-η curve alone (Hermite's criterion)
Ratios to the fixed-η curve (log-log interpolation of medians; NaN outside the sweep's range). The `oracle` rows
try every parameter value of a grid on a copy of the state before each interval and keep the best by force
evaluations + |δE/E0|/μ; their trial integrations are not counted, so they bound what a per-interval choice can
gain:

{markdown_table(comparisons)}

### What changing η between intervals costs (60 reference initial conditions, mean η = 0.005)
log10 η gets Gaussian jitter of the given standard deviation at every 0.1-yr interval; the cost barely moves,
the error grows fast. Hermite at a constant η lets the energy errors of an encounter largely cancel; a
controller that varies η per interval pays for breaking that.

{markdown_table(table.attrs["jitter"])}
"""


def speed_table(rounds: int) -> pd.DataFrame:
    """The ``--speed`` measurements: the per-step timings, with the ratios, force and PPO tables in ``attrs``."""
    steps, ratios = step_timings(rounds=rounds)
    steps.attrs.update(ratios=ratios, forces=force_timings(rounds=rounds), ppo=ppo_timings(rounds=rounds))
    return steps


def render_speed(table: pd.DataFrame) -> str:
    """The ``--speed`` subsections."""
    rounds = int(table["rounds"].iloc[0])
    return f"""Every timer runs once per round, {rounds} rounds interleaved, in CPU thread time (`time.thread_time`), so
other work on the machine barely moves them; `min` is the least over the rounds, `median` the middle one. The ratios
are of the same process's minima (and medians).

### One step, layer by layer (µs per system-step; whole 100-interval episodes at a fixed η)
`numba loop`: `hermite_loop` called once per interval; `Integrator.evolve` and `ThreeBodyProcess.advance` over the
same intervals; `env step`: `gym.make(...).step` through its wrappers (one fused Numba call per step); `vector
env, N`: `gym.make_vec(..., vectorization_mode="vector_entry_point")` stepping N systems in one call, against the
loop on the same N systems.

{markdown_table(table)}

{markdown_table(table.attrs["ratios"])}

### Force evaluations per CPU-second (reference IC 0, t = 1000)
{markdown_table(table.attrs["forces"])}

### SB3 PPO steps per CPU-second (`agents/ppo.yml`, one rollout of `n_steps` per env and its update, per round)
`dummy`: SB3's `DummyVecEnv` of `gym.make` envs (what `adaptstep train` built before); `native`: the vector env
behind `GymnasiumVecEnv`, which feeds PPO the same transitions (tested: the same weights as `dummy` on the same
seeds), so the trained agent is the same, only cheaper.

{markdown_table(table.attrs["ppo"])}
"""


def envelope_sentence(row: pd.Series, agent: str) -> str:
    """The headline sentence on the agent against the union envelope.

    It gives the agent's cost and error ratios with CIs, the strongest baseline at its error and whether a
    measured row dominates it.

    Args:
        row: The agent's row of ``envelope_comparison``.
        agent: The agent's controller spec.
    """
    def interval(key: str) -> str:
        return f"**{row[key]:.3g}×** (95% CI {row[f'{key}_lo']:.3g}–{row[f'{key}_hi']:.3g})"

    if math.isfinite(row["cost_ratio"]):
        points = row["compared_at_error"].split(", ")
        where = (f"between `{points[0]}` and `{points[1]}`" if len(points) == 2 else f"`{points[0]}` itself")
        cost = (f"At its median error ({row['error']:.3g}) the agent `{agent}` needs {interval('cost_ratio')} the "
                f"force evaluations of the envelope, whose strongest baseline there is "
                f"**`{row['strongest_at_error']}`** ({where})")
    else:
        cost = f"No classical row reaches the median error of the agent `{agent}` ({row['error']:.3g})"
    error = (f"at its median cost ({row['cost']:.3g}) the envelope's median error is {interval('error_ratio')} the "
             f"agent's (strongest there: `{row['strongest_at_cost']}`)" if math.isfinite(row["error_ratio"]) else
             f"it is cheaper ({row['cost']:.3g}) than every classical row")
    better = ", ".join(f"`{name}`" for name in row["dominated_by"].split(", ") if name)
    dominated = (f"Measured classical rows better in both medians: {better}." if better else
                 "No measured classical row is better in both medians.")
    return f"{cost}; {error}. {dominated}"


def envelope_table(frontier: pd.DataFrame) -> pd.DataFrame:
    """``envelope_comparison``'s rows with each ratio and its CI in one cell."""
    def cell(row: pd.Series, key: str) -> str:
        if not math.isfinite(row[key]):
            return "nan"
        return f"{row[key]:.3g} ({row[f'{key}_lo']:.3g}–{row[f'{key}_hi']:.3g})"

    out = frontier[["controller", "cost", "error"]].copy()
    out["cost_ratio (95% CI)"] = [cell(row, "cost_ratio") for _, row in frontier.iterrows()]
    out["error_ratio (95% CI)"] = [cell(row, "error_ratio") for _, row in frontier.iterrows()]
    columns = ["p_behind", "strongest_at_error", "compared_at_error", "strongest_at_cost", "dominated_by"]
    return pd.concat([out, frontier[columns]], axis=1)


def oracle_specs(mus: list[float], ias15_mus: list[float] = ()) -> list[str]:
    """The controller specs of the lookahead-oracle rows.

    Args:
        mus: The Lagrange multipliers of the rows with the env's backend.
        ias15_mus: The Lagrange multipliers of the rows choosing IAS15's ε.
    """
    return [*(f"oracle:mu={mu:g}" for mu in mus), *(f"oracle:mu={mu:g}@backend=rebound-ias15" for mu in ias15_mus)]


def agent_spec(model: Path, env_kwargs: dict[str, Any]) -> str:
    """The controller spec of a trained agent.

    Args:
        model: The ``model.zip`` path or a ``zoo:NAME`` spec.
        env_kwargs: The bench's env kwargs.

    Returns:
        The model's path, with ``@backend=...`` when its ``run.yaml`` says it was trained on another backend than
        the bench's env.
    """
    path = resolve(str(model))[0] if is_zoo_spec(str(model)) else model
    run_file = path.parent / RUN_FILE
    trained = (load_yaml(run_file) or {}).get("env_kwargs", {}) if run_file.exists() else {}
    backend = trained.get("backend")
    if backend is not None and backend != env_setting(env_kwargs, "backend"):
        return f"{model}@backend={backend}"
    return str(model)


def transfer_spec(agent: str, env_kwargs: dict[str, Any]) -> str:
    """The agent's policy driving the other integrator (Hermite ↔ IAS15).

    Args:
        agent: The agent's controller spec, possibly with ``@backend=...``.
        env_kwargs: The bench's env kwargs.
    """
    path, _, overrides = agent.partition("@")
    backend = overrides.partition("backend=")[2] or env_setting(env_kwargs, "backend")
    return f"{path}@backend={TRANSFER.get(backend, 'rebound-ias15')}"


def trained_agent(model: Path, env_kwargs: dict[str, Any]) -> Path:
    """``model``, trained first with agents/ppo.yml into its folder when it does not exist (a ``zoo:NAME`` spec
    names a shipped agent).

    Args:
        model: The ``model.zip`` path.
        env_kwargs: The env kwargs to train with.
    """
    if not model.exists() and not is_zoo_spec(str(model)):
        print(f"training an agent with agents/ppo.yml into {model.parent}")
        train(ENV_ID, "ppo", model.parent, seed=0, env_kwargs=env_kwargs)
    return model


def sweep_comparisons(summary: pd.DataFrame, controllers: list[str]) -> pd.DataFrame:
    """Each controller's cost and error ratios against the fixed-η sweep's curve of medians.

    Args:
        summary: The harness summary, one row per controller.
        controllers: The controllers to compare.
    """
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


def env_setting(env_kwargs: dict[str, Any], name: str) -> Any:
    """The env's setting ``name``: from ``env_kwargs``, else ``ThreeBodyEnv``'s default."""
    return env_kwargs.get(name, inspect.signature(ThreeBodyEnv).parameters[name].default)


def eta_jitter(eta: float = 0.005, jitters: tuple[float, ...] = (0.0, 0.02, 0.08, 0.2), systems: int = 60,
               intervals: int = 100, interval: float = 0.1 * YEAR) -> pd.DataFrame:
    """Median final |ΔE/E0| and cost when log10 η gets Gaussian jitter of the given std at every interval.

    Args:
        eta: The mean η.
        jitters: The standard deviations of the jitter, in decades of η.
        systems: The reference initial conditions (drawn from seed 1).
        intervals: The intervals per system.
        interval: The interval length in N-body units.

    Returns:
        One row per jitter, with ``error_vs_constant`` the median error over that without jitter.
    """
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
