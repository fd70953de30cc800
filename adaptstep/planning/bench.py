"""Offline-RL planning benchmark: D4RL normalized score against NFE and wall time per plan for each planner.

Every planner (``--planner NAME=PATH``, checkpoints of ``adaptstep train-planner`` or ``zoo:NAME``) runs on
``adaptstep/PlannerBudget-v0`` through the shared harness (``evaluate``) with a fixed budget at every replanning
point (``fixed:budget=K`` for each ``--budget NAME=K,K,...``: Diffuser's solver steps from noise, Trajectory
Diffuser's refinement steps), and the trained budget agents (``--agent NAME=PATH``: a model.zip trained on the env
with that planner) on the same episode seeds. Each planner replans every ``--replan-every`` control steps unless
``--replan NAME=N`` gives it its own period (a Diffuser's open-loop actions need replanning at every step on
hopper). Reported: normalized score mean ± standard error over episodes, NFE per episode, wall time per plan
(median over episodes of the mean per episode), and on maze2d the data-collection controller as an off-env
reference (``waypoint_rows``; under D4RL's protocol also uniformly random actions, ``random_rows``). The mean's
95% CI is a percentile bootstrap over episodes (2000 resamples). Baseline policies (``bc``, ``iql`` checkpoints)
run as planners of one step, ``--budget NAME=1 --replan NAME=1``. ``--workers N`` (the benchmarks' shared option)
runs N episodes at a time in spawned processes of one CPU thread each (every-step replanning on hopper is long
work).
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np
import pandas as pd
import torch

from adaptstep.agents.controllers import agent_provenance
from adaptstep.core.bench import Benchmark, off_env_row
from adaptstep.core.report import markdown_table
from adaptstep.core.settings import parse_settings
from adaptstep.evaluation import evaluate
from adaptstep.planning.planners import DiffuserPlanner, Planner, load_planner
from adaptstep.planning.policies import PolicyPlanner
from adaptstep.planning.d4rl_eval import random_scores
from adaptstep.planning.scores import normalized_score
from adaptstep.planning.tasks import PLANNING_TASKS, planning_task, waypoint_scores
from adaptstep.plotting import plot_mean_against_cost

ENV_ID = "adaptstep/PlannerBudget-v0"
WAYPOINT = "waypoint controller (data)"
RANDOM = "random actions"
BOOTSTRAP_RESAMPLES = 2000

Job = tuple[str, dict[str, Any], str]  # (controller spec, env kwargs, method label)


class OfflineBenchmark(Benchmark):
    """Offline-RL planning: normalized score against NFE and wall time per plan for each planner and budget."""

    name = "offline"
    default_episodes = 30
    default_seed = 10_000

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """The task, the planners with their budgets, settings and periods, the agents and the workers."""
        parser.add_argument("--task", default="maze2d-umaze", choices=sorted(PLANNING_TASKS))
        parser.add_argument("--planner", action="append", default=[], metavar="NAME=PATH", required=True,
                            help="a planner checkpoint (adaptstep train-planner), e.g. diffuser=runs/planners/d.pt")
        parser.add_argument("--budget", action="append", default=[], metavar="NAME=K,K,...",
                            help="fixed budgets of that planner (default 20 for a Diffuser, 1,2,5 otherwise)")
        parser.add_argument("--option", action="append", default=[], metavar="NAME:KEY=VALUE",
                            help="a planner setting, e.g. trajectory-diffuser:samples=4 (repeatable)")
        parser.add_argument("--agent", action="append", default=[], metavar="NAME=PATH",
                            help="a budget agent (model.zip) trained on PlannerBudget-v0 with planner NAME")
        parser.add_argument("--replan-every", type=int, default=8, help="control steps between plans (0: plan once)")
        parser.add_argument("--replan", action="append", default=[], metavar="NAME=N",
                            help="that planner's own --replan-every (e.g. diffuser=1: open-loop plans fall over on "
                                 "hopper)")
        parser.add_argument("--target-return", type=float, default=None, help="return-conditioned tasks' target")

    def section(self, args: argparse.Namespace) -> str:
        """``offline-<task>`` unless ``--section`` names it."""
        return args.section or f"offline-{args.task}"

    def heading(self, args: argparse.Namespace) -> str:
        """The section's heading."""
        return f"## Offline-RL planning: {args.task}"

    def measure(self, args: argparse.Namespace) -> pd.DataFrame:
        """The harness rows of every planner's budgets and agents, with their ``method``.

        Returns:
            The rows, after the waypoint controller's off-env rows on maze2d; the planners' descriptions are in
            ``attrs["planners"]``.
        """
        torch.set_num_threads(1)
        planners, agents = _pairs(args.planner, "--planner"), _pairs(args.agent, "--agent")
        options = planner_options(args.option, planners)
        budgets = {name: [int(k) for k in value.split(",")] for name, value in _pairs(args.budget, "--budget").items()}
        replan = {name: int(value) for name, value in _pairs(args.replan, "--replan").items()}
        details, jobs = [], []
        for name, path in planners.items():
            planner = load_planner(path, **options[name])
            details.append(planner_description(name, path, planner, options[name]))
            ks = budgets.get(name, [20] if isinstance(planner, DiffuserPlanner) else [1, 2, 5])
            env_kwargs = {"planner": path, "planner_options": options[name], "task": args.task,
                          "replan_every": replan.get(name, args.replan_every), "max_budget": max(ks),
                          "target_return": args.target_return}
            jobs += [(f"fixed:budget={k}", env_kwargs, f"{name}, k = {k}") for k in ks]
            if name in agents:
                jobs.append((agents[name], env_kwargs, f"{name} + learned budget"))
        spec, reference = planning_task(args.task), []
        if spec.condition == "goal":
            reference.append(waypoint_rows(args.task, args.seed, args.episodes))
        if spec.protocol == "d4rl":
            reference.append(random_rows(args.task, args.seed, args.episodes))
        table = pd.concat([*reference, run_jobs(jobs, args.seed, args.episodes)], ignore_index=True)
        table.attrs["planners"] = details
        return table

    def render(self, table: pd.DataFrame, args: argparse.Namespace) -> str:
        """The summary table, the planners, the agents and the plot."""
        summary = summary_table(table)
        plot_path, plot_link = self.figure(args)
        plot_mean_against_cost(summary, "NFE / episode", "score_mean", "score_se", plot_path, "NFE per episode",
                               "normalized score (± standard error)", f"{args.task}, {args.episodes} episodes")
        agents = _pairs(args.agent, "--agent")
        return "\n".join([
            f"D4RL normalized score (mean ± standard error and its 95% bootstrap CI over {args.episodes} episodes, "
            f"seeds {args.seed}…), NFE and plans per episode, median wall time per plan (one CPU thread; "
            f"{args.workers} episode{'s' if args.workers > 1 else ''} at a time), control steps between plans. "
            f"Protocol: {protocol_text(args.task)} The datasets are made by `adaptstep data make` (not D4RL's files), "
            "so these scores are not comparable with published D4RL numbers.",
            "", markdown_table(summary.drop(columns=["score_mean", "score_se"]), "{:.4g}"), "",
            "Planners:", "", *table.attrs["planners"], "",
            *(["Budget agents:", "", *[agent_provenance(path) for path in agents.values()], ""] if agents else []),
            f"![score vs NFE]({plot_link})",
        ])


def _pairs(items: list[str], option: str) -> dict[str, str]:
    """``NAME=VALUE`` items of ``option`` -> {NAME: VALUE}."""
    pairs = {}
    for item in items:
        name, _, value = item.partition("=")
        if not name or not value:
            raise SystemExit(f"{option} must look like NAME=VALUE, got {item!r}")
        if name in pairs:
            raise SystemExit(f"{option} names {name!r} twice; give each its own planner name")
        pairs[name] = value
    return pairs


def planner_options(items: list[str], planners: dict[str, str]) -> dict[str, dict[str, Any]]:
    """``--option NAME:KEY=VALUE`` items -> each planner's settings."""
    options: dict[str, dict[str, Any]] = {name: {} for name in planners}
    for item in items:
        name, _, assignment = item.partition(":")
        if name not in planners:
            raise SystemExit(f"--option must look like NAME:KEY=VALUE for a --planner NAME, got {item!r}")
        options[name].update(parse_settings(assignment, "--option"))
    return options


def planner_description(name: str, path: str, planner: Planner, options: dict[str, Any]) -> str:
    """One line on a planner: its checkpoint, horizon, training and settings."""
    trained = planner.metadata
    settings = "".join(f", {key} = {value}" for key, value in options.items())
    inputs = "state and goal" if trained.get("goal_conditioned") else "state only"
    inputs += f", τ = {trained['tau']}, β = {trained['beta']}" if "tau" in trained else ""
    shape = f"a reactive policy ({trained['method']}, {inputs})" if isinstance(planner, PolicyPlanner) else \
        f"horizon {planner.horizon}"
    return (f"- {name}: `{path}`, {shape}, trained {trained.get('steps')} steps on "
            f"{trained.get('transitions')} transitions{dataset_source(trained)} in "
            f"{trained.get('seconds', 0) / 60:.0f} min{settings}")


def episode_rows(spec: str, env_kwargs: dict[str, Any], seed: int, episodes: int, label: str) -> pd.DataFrame:
    """The harness rows of one controller on seeds seed, seed + 1, …, with its ``method`` label.

    Args:
        spec: The controller spec: ``fixed:budget=K`` or a model.zip.
        env_kwargs: The env kwargs.
        seed: The first seed.
        episodes: The number of episodes.
        label: The rows' ``method``.
    """
    table = evaluate(ENV_ID, [spec], episodes=episodes, seed=seed, env_kwargs=env_kwargs, progress=False)
    return table.assign(method=label)


def run_jobs(jobs: list[Job], seed: int, episodes: int) -> pd.DataFrame:
    """Every (controller spec, env kwargs, label) job on the seeds from ``seed``, in order.

    The episodes of each job run on the benchmark's executor (``--workers``, ``--executor``), each in one CPU thread.
    """
    return pd.concat([episode_rows(spec, kwargs, seed, episodes, label) for spec, kwargs, label in jobs],
                     ignore_index=True)


def waypoint_rows(task: str, seed: int, episodes: int) -> pd.DataFrame:
    """Off-env measurement of maze2d's data-collection controller (waypoints + PD) on the same seeds.

    Returns:
        Rows with the harness's columns: no planning, no NFE.
    """
    seeds = range(seed, seed + episodes)
    return pd.DataFrame([off_env_row(WAYPOINT, seed, 0, normalized_score=normalized_score(task, score), score=score,
                                     plans=0, forced_replans=0, replan_every=0, plan_seconds=0.0, method=WAYPOINT)
                         for seed, score in zip(seeds, waypoint_scores(task, seeds))])


def random_rows(task: str, seed: int, episodes: int) -> pd.DataFrame:
    """Off-env measurement of uniformly random actions under D4RL's maze2d protocol on the same seeds."""
    seeds = range(seed, seed + episodes)
    return pd.DataFrame([off_env_row(RANDOM, seed, 0, normalized_score=normalized_score(task, score), score=score,
                                     plans=0, forced_replans=0, replan_every=0, plan_seconds=0.0, method=RANDOM)
                         for seed, score in zip(seeds, random_scores(task, seeds))])


def protocol_text(task: str) -> str:
    """One sentence on how ``task``'s episodes are set up and scored."""
    spec = planning_task(task)
    if spec.protocol == "d4rl":
        return (f"D4RL's maze2d protocol: the goal fixed at the maze's G cell, the start in any free cell, "
                f"reward 1 per step within 0.5 of the goal, {spec.max_steps} steps, normalized with {task}'s "
                "REF_MIN/REF_MAX.")
    if spec.condition == "goal":
        return (f"adaptstep's maze protocol: goal and start cells drawn per seed (±0.25 noise), reward within 0.45, "
                f"{spec.max_steps} steps, normalized with D4RL's v1 references.")
    return f"{spec.env_id}, {spec.max_steps} steps, terminated when it falls."


def bootstrap_ci(values: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = 0) -> tuple[float, float]:
    """The 95% percentile-bootstrap interval of the mean of ``values`` (episodes resampled with replacement)."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(len(values), size=(resamples, len(values)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(low), float(high)


def dataset_source(trained: dict) -> str:
    """' of `<data command or file>` (<how it was made>)' from the dataset metadata in a planner's checkpoint
    ('' without any); the ``adaptstep data make`` command names the data where the metadata holds it."""
    if "dataset" not in trained:
        return ""
    data = trained.get("dataset_metadata", {})
    if "policy_training_steps" in data:
        source = (f"SAC checkpoint at {data['policy_training_steps']} steps, evaluation return "
                  f"{data['policy_eval_return']:.0f}")
    else:
        source = data.get("controller", "unknown source")
    return f" of `{data.get('command', trained['dataset'])}` ({source})"


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """The summary row of each method.

    Returns:
        Per method: the normalized score's mean ± standard error, its replanning period, NFE and plans per
        episode, the median over episodes of milliseconds per plan, the episodes, and the mean's 95% bootstrap CI.
    """
    def describe(group: pd.DataFrame) -> pd.Series:
        scores = group["normalized_score"].to_numpy()
        error = scores.std(ddof=1) / np.sqrt(len(scores))
        low, high = bootstrap_ci(scores)
        seconds_per_plan = group["plan_seconds"] / group["plans"].clip(lower=1)
        return pd.Series({"normalized score": f"{scores.mean():.1f} ± {error:.1f}", "score_mean": scores.mean(),
                          "replan every": (group["replan_every"].iloc[0] if group["replan_every"].iloc[0]
                                           or not group["plans"].any() else "once"),
                          "score_se": error, "NFE / episode": group["cost"].mean(),
                          "plans / episode": group["plans"].mean(),
                          "ms / plan": 1000 * seconds_per_plan.median(), "episodes": len(group),
                          "95% CI": f"[{low:.1f}, {high:.1f}]"})

    return table.groupby("method", sort=False).apply(describe, include_groups=False).reset_index()
