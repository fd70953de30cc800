"""Offline-RL planning benchmark: D4RL normalized score against NFE and wall time per plan for each planner.

Every planner (``--planner NAME=PATH``, checkpoints of ``adaptstep train-planner``) runs on
``adaptstep/PlannerBudget-v0`` through the shared harness's ``run_episode`` with a fixed budget at every
replanning point (``--budget NAME=K,K,...``: Diffuser's solver steps from noise, Trajectory Diffuser's refinement
steps), and the trained budget agents (``--agent NAME=PATH``: a model.zip trained on the env with that planner)
on the same episode seeds. Each planner replans every ``--replan-every`` control steps unless ``--replan NAME=N``
gives it its own period (a Diffuser's open-loop actions need replanning at every step on hopper). Reported:
normalized score mean ± standard error over episodes, NFE per episode, wall time per plan (median over episodes of
the mean per episode), and the data-collection controller as a reference on maze2d. ``--workers N`` runs N
episodes at a time in spawned processes of one CPU thread each (every-step replanning on hopper is long work).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import shlex
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import torch

from adaptstep.agents.baselines import FixedParameter
from adaptstep.agents.controllers import ModelController, agent_provenance
from adaptstep.core.report import (
    machine_description,
    markdown_table,
    section_figure,
    write_section,
)
from adaptstep.evaluation import run_episode
from adaptstep.planning.maze_data import WaypointController
from adaptstep.planning.planners import DiffuserPlanner, load_planner
from adaptstep.planning.scores import normalized_score
from adaptstep.planning.tasks import TASKS, make_task_env, split_observation, task_spec
from adaptstep.plotting import plot_mean_against_cost
from adaptstep.specs import parse_assignments

ENV_ID = "adaptstep/PlannerBudget-v0"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default="maze2d-umaze", choices=sorted(TASKS))
    parser.add_argument("--planner", action="append", default=[], metavar="NAME=PATH", required=True,
                        help="a planner checkpoint (adaptstep train-planner), e.g. diffuser=runs/planners/d.pt")
    parser.add_argument("--budget", action="append", default=[], metavar="NAME=K,K,...",
                        help="fixed budgets of that planner (default 20 for a Diffuser, 1,2,5 otherwise)")
    parser.add_argument("--option", action="append", default=[], metavar="NAME:KEY=VALUE",
                        help="a planner setting, e.g. trajectory-diffuser:samples=4 (repeatable)")
    parser.add_argument("--agent", action="append", default=[], metavar="NAME=PATH",
                        help="a budget agent (model.zip) trained on PlannerBudget-v0 with planner NAME")
    parser.add_argument("--episodes", type=int, default=30, help="episodes (task seeds) per row")
    parser.add_argument("--seed", type=int, default=10_000, help="first episode seed")
    parser.add_argument("--replan-every", type=int, default=8, help="control steps between plans")
    parser.add_argument("--replan", action="append", default=[], metavar="NAME=N",
                        help="that planner's own --replan-every (e.g. diffuser=1: open-loop plans fall over on hopper)")
    parser.add_argument("--target-return", type=float, default=None, help="return-conditioned tasks' target")
    parser.add_argument("--workers", type=int, default=1,
                        help="episodes run in this many processes at once, one CPU thread each (at most the cores)")
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    parser.add_argument("--plot", type=Path, default=None, help="default benchmarks/offline-<task>.png beside --out")


def _pairs(items: list[str], option: str) -> dict[str, str]:
    pairs = {}
    for item in items:
        name, _, value = item.partition("=")
        if not name or not value:
            raise SystemExit(f"{option} must look like NAME=VALUE, got {item!r}")
        pairs[name] = value
    return pairs


def episode_rows(controller: tuple[str, str, int | str], env_kwargs: dict, seeds: list[int],
                 label: str) -> list[dict]:
    """The harness's episode rows of one controller (``("fixed", name, k)`` or ``("agent", name, model.zip)``, made
    here so that a worker process can build it), plus its replanning period and each episode's planning wall
    time per plan."""
    kind, name, value = controller
    controller = FixedParameter(name, "budget", value) if kind == "fixed" else ModelController(name, value)
    env = gym.make(ENV_ID, **{**env_kwargs, **controller.env_overrides})
    rows = []
    try:
        for seed in seeds:
            row = run_episode(env, controller, seed)
            execution = env.unwrapped.execution
            rows.append({**row, "method": label, "replan every": execution.replan_every, "plans": execution.plans,
                         "seconds_per_plan": execution.plan_seconds / max(execution.plans, 1)})
    finally:
        env.close()
    return rows


def run_jobs(jobs: list[tuple[tuple, dict, str]], seeds: list[int], workers: int) -> list[dict]:
    """Every (controller, env kwargs, label) job on every seed, in order; with ``workers`` > 1 the episodes run in
    that many spawned processes, one CPU thread each (each episode's timing stays single-threaded)."""
    if workers == 1:
        return [row for controller, kwargs, label in jobs for row in episode_rows(controller, kwargs, seeds, label)]
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(workers, mp_context=context, initializer=torch.set_num_threads, initargs=(1,)) as pool:
        futures = [pool.submit(episode_rows, controller, kwargs, [seed], label)
                   for controller, kwargs, label in jobs for seed in seeds]
        return [row for future in futures for row in future.result()]


def dataset_source(trained: dict) -> str:
    """' of `<file>` (<how it was made>)' from the dataset metadata in a planner's checkpoint ('' without any)."""
    if "dataset" not in trained:
        return ""
    data = trained.get("dataset_metadata", {})
    if "policy_training_steps" in data:
        source = (f"SAC checkpoint at {data['policy_training_steps']} steps, evaluation return "
                  f"{data['policy_eval_return']:.0f}")
    else:
        source = data.get("controller", "unknown source")
    return f" of `{trained['dataset']}` ({source})"


def reference_rows(task: str, seeds: list[int]) -> list[dict]:
    """maze2d's data-collection controller (waypoints + PD) on the same seeds: no planning, no NFE."""
    env, rows = make_task_env(task), []
    controller = WaypointController(env.unwrapped.maze)
    for seed in seeds:
        (observation, _), score, done = env.reset(seed=seed), 0.0, False
        while not done:
            state, goal = split_observation(task, observation)
            observation, reward, terminated, truncated, _ = env.step(controller.act(state[:2], state[2:], goal))
            score, done = score + reward, terminated or truncated
        rows.append({"method": "waypoint controller (data)", "seed": seed, "cost": 0, "replan every": 0,
                     "normalized_score": normalized_score(task, score), "plans": 0, "seconds_per_plan": 0.0})
    env.close()
    return rows


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    def describe(group: pd.DataFrame) -> pd.Series:
        scores = group["normalized_score"].to_numpy()
        error = scores.std(ddof=1) / np.sqrt(len(scores))
        return pd.Series({"normalized score": f"{scores.mean():.1f} ± {error:.1f}", "score_mean": scores.mean(),
                          "replan every": group["replan every"].iloc[0],
                          "score_se": error, "NFE / episode": group["cost"].mean(),
                          "plans / episode": group["plans"].mean(),
                          "ms / plan": 1000 * group["seconds_per_plan"].median(), "episodes": len(group)})

    return table.groupby("method", sort=False).apply(describe, include_groups=False).reset_index()


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    started = time.perf_counter()
    planners, agents = _pairs(args.planner, "--planner"), _pairs(args.agent, "--agent")
    budgets = {name: [int(k) for k in value.split(",")] for name, value in _pairs(args.budget, "--budget").items()}
    replan = {name: int(value) for name, value in _pairs(args.replan, "--replan").items()}
    options: dict[str, dict] = {name: {} for name in planners}
    for item in args.option:
        name, _, assignment = item.partition(":")
        if name not in planners:
            raise SystemExit(f"--option must look like NAME:KEY=VALUE for a --planner NAME, got {item!r}")
        options[name].update(parse_assignments(assignment, "--option"))
    if not 1 <= args.workers <= (os.cpu_count() or 1):
        raise SystemExit(f"--workers must be an int in [1, {os.cpu_count()}] (the cores), got {args.workers}")
    seeds = list(range(args.seed, args.seed + args.episodes))
    rows = reference_rows(args.task, seeds) if task_spec(args.task).condition == "goal" else []
    details, jobs = [], []
    for name, path in planners.items():
        planner = load_planner(path, **options[name])
        trained = planner.metadata
        settings = "".join(f", {key} = {value}" for key, value in options[name].items())
        details.append(f"- {name}: `{path}`, horizon {planner.horizon}, trained {trained.get('steps')} steps on "
                       f"{trained.get('transitions')} transitions{dataset_source(trained)} in "
                       f"{trained.get('seconds', 0) / 60:.0f} min{settings}")
        ks = budgets.get(name, [20] if isinstance(planner, DiffuserPlanner) else [1, 2, 5])
        env_kwargs = {"planner": path, "planner_options": options[name], "task": args.task,
                      "replan_every": replan.get(name, args.replan_every), "max_budget": max(ks),
                      "target_return": args.target_return}
        jobs += [(("fixed", f"{name} k={k}", k), env_kwargs, f"{name}, k = {k}") for k in ks]
        if name in agents:
            jobs.append((("agent", f"{name} + learned budget", agents[name]), env_kwargs, f"{name} + learned budget"))
    rows += run_jobs(jobs, seeds, args.workers)
    summary = summary_table(pd.DataFrame(rows))
    plot_path, plot_link = section_figure(args.out, f"offline-{args.task}", args.plot)
    plot_mean_against_cost(summary, "NFE / episode", "score_mean", "score_se", plot_path, "NFE per episode",
                           "normalized score (± standard error)", f"{args.task}, {args.episodes} episodes")
    command = "adaptstep bench offline " + " ".join(shlex.quote(arg) for arg in sys.argv[3:])
    body = [
        f"## Offline-RL planning: {args.task}",
        f"Command: `{command}`  ",
        f"Machine: {machine_description(('numpy', 'torch', 'stable-baselines3', 'gymnasium'))}; "
        f"{time.perf_counter() - started:.0f} s.",
        "",
        f"D4RL normalized score (mean ± standard error over {args.episodes} episodes, seeds {args.seed}…), NFE and "
        "plans per episode, median wall time per plan (one CPU thread; "
        f"{args.workers} episode{'s' if args.workers > 1 else ''} at a time), control steps between plans. "
        "The datasets are made by `adaptstep data make` (not D4RL's files), so these scores are not comparable "
        "with published D4RL numbers.",
        "", markdown_table(summary.drop(columns=["score_mean", "score_se"]), "{:.4g}"), "",
        "Planners:", "", *details, "",
        *(["Budget agents:", "", *[agent_provenance(path) for path in agents.values()], ""] if agents else []),
        f"![score vs NFE]({plot_link})",
    ]
    write_section(args.out, f"offline-{args.task}", "\n".join(body))
    print("\n".join(body))
