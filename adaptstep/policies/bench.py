"""Robot benchmark: success rate against policy compute for Diffusion Policy and the dual system's refresh schedules.

On the same episode seeds: the plain Diffusion Policy (``--diffusion-policy PATH``, an off-env measurement through
``adaptstep.policies.runner``: it has no System 2 to schedule, so no env), and through the shared harness on
``adaptstep/DualSystem-v0`` the dual system (``--dual-system PATH``) refreshing System 2 every k calls for each k of
``--refresh`` with the synchronous runner and the asynchronous one (``--runner``), each at the action head's own
solver steps or at each of ``--solver-steps``, hand-made refresh controllers such as the event-triggered
``refresh:every=8,change=0.007`` or ``refresh:every=20,target_change=0.007`` (``--controller SPEC``), and the
learned refresh agents (``--agent PATH``, a model.zip trained on that env, run as it was trained). Reported: success
rate ± standard error, final fingertip distance, policy calls and System-2 calls per episode, compute per episode in
System-1 calls (a call at the head's own solver steps counts 1) and success per System-1 call, policy
milliseconds per episode (the control loop's wall time in System 1 and waiting for System 2;
simulation and rendering excluded), control frequency (policy calls per second of it) and success per policy-second.
``--device`` puts the policies on the CPU (one torch thread) or a GPU (default: CUDA when present); the simulation
and rendering stay on the CPU.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from adaptstep.agents.controllers import Controller, ModelController, agent_provenance, parse_controller
from adaptstep.core.bench import Benchmark, off_env_row
from adaptstep.core.report import markdown_table
from adaptstep.core.settings import int_list
from adaptstep.evaluation import evaluate
from adaptstep.nn.device import resolve_device
from adaptstep.plotting import plot_mean_against_cost
from adaptstep.policies.baselines import PeriodicRefresh
from adaptstep.policies.diffusion_policy import load_diffusion_policy
from adaptstep.policies.dual_system import load_dual_system
from adaptstep.policies.pusht import SUCCESS_COVERAGE
from adaptstep.policies.runner import PolicyExecution, measure_system2_cost, run_policy_episode
from adaptstep.policies.task import PUSHT_ENV_ID, ROBOT_TASKS, make_robot_env, robot_task

ENV_ID = "adaptstep/DualSystem-v0"
RUNNERS = {"sync": False, "async": True}  # --runner: DualSystem-v0's asynchronous
DIFFUSION_POLICY = "Diffusion Policy"


class RobotBenchmark(Benchmark):
    """Robot policies: success rate against policy compute for Diffusion Policy and the dual system's refreshes."""

    name = "robot"
    default_episodes = 50
    default_seed = 20_000
    packages = ("numpy", "torch", "stable-baselines3", "gymnasium", "mujoco", "gym-pusht", "pymunk")

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """The task, the policies, the refresh schedules and controllers, the agents and the device."""
        parser.add_argument("--task", default="reacher", choices=sorted(ROBOT_TASKS))
        parser.add_argument("--diffusion-policy", type=Path,
                            help="a Diffusion Policy checkpoint (adaptstep train-robot)")
        parser.add_argument("--dual-system", type=Path,
                            help="a dual-system checkpoint (needed by --refresh, --controller and --agent rows)")
        parser.add_argument("--refresh", default="1,2,4,8", type=int_list,
                            help="System-2 refresh periods k to compare")
        parser.add_argument("--solver-steps", default=[], type=int_list,
                            help="System-1 solver steps of the fixed periods, e.g. 2,5 (default: the policy's own)")
        parser.add_argument("--runner", default="sync,async",
                            help="runners of the fixed periods: sync, async or both (System 2 on a worker thread)")
        parser.add_argument("--controller", action="append", default=[],
                            help="a hand-made refresh controller, e.g. refresh:every=8,change=0.007 or "
                                 "refresh:every=20,target_change=0.007 (event-triggered); "
                                 "repeatable, synchronous unless it ends in @asynchronous=true")
        parser.add_argument("--agent", action="append", default=[], type=Path,
                            help="a learned refresh agent (model.zip trained on adaptstep/DualSystem-v0); repeatable")
        parser.add_argument("--action-steps", type=int, default=None, help="actions executed per call (policy's own)")
        parser.add_argument("--device", default="auto",
                            help="where the policies run: auto (CUDA when present), cpu or cuda")

    def section(self, args: argparse.Namespace) -> str:
        """``robot-<task>`` (``robot-<task>-cuda`` on a GPU) unless ``--section`` names it."""
        device = resolve_device(args.device)
        return args.section or f"robot-{args.task}" + ("" if device.type == "cpu" else f"-{device.type}")

    def heading(self, args: argparse.Namespace) -> str:
        """The section's heading: the task, the GPU if one ran the policies, and an explicit section's name."""
        device = resolve_device(args.device)
        return (f"## Robot policies: {args.task}"
                + ("" if device.type == "cpu" else f" on {torch_device_description(device, versions=False)}")
                + (f" ({args.section})" if args.section else ""))

    def setting(self, args: argparse.Namespace) -> str:
        """Where the policies ran."""
        return f"policies on {torch_device_description(resolve_device(args.device))}"

    def measure(self, args: argparse.Namespace) -> pd.DataFrame:
        """Diffusion Policy's off-env rows, then the harness rows of every dual-system controller.

        Returns:
            The rows, each with its ``method``; the policies' descriptions are in ``attrs["policies"]``.
        """
        torch.set_num_threads(1)
        device = checked_device(args.device)
        runners = parse_runners(args.runner)
        controllers = [parse_controller(spec) for spec in args.controller]
        tables, details = [], []
        if args.diffusion_policy:
            baseline = load_diffusion_policy(args.diffusion_policy, device)
            tables.append(diffusion_policy_rows(baseline, args.task, args.seed, args.episodes, args.action_steps))
            details.append(f"- Diffusion Policy: `{args.diffusion_policy}`, {_training(baseline.metadata)}")
        if args.dual_system is None:
            if not args.diffusion_policy or args.controller or args.agent:
                raise SystemExit("--dual-system is required unless only --diffusion-policy is measured")
            return finish(tables, details, args.task)
        dual = load_dual_system(args.dual_system, device)
        system2_cost = measure_system2_cost(dual)
        details.append(f"- dual system: `{args.dual_system}`, {_training(dual.metadata)}; one System-2 call costs "
                       f"{system2_cost:.1f} System-1 calls (measured here)")
        env_kwargs = {"policy": dual, "task": args.task, "action_steps": args.action_steps,
                      "system2_cost": system2_cost}
        for method, controller in dual_system_controllers(args, runners, controllers):
            table = evaluate(ENV_ID, [controller], episodes=args.episodes, seed=args.seed, env_kwargs=env_kwargs,
                             progress=False)
            tables.append(table.assign(method=method))
        return finish(tables, details, args.task)

    def render(self, table: pd.DataFrame, args: argparse.Namespace) -> str:
        """The summary table, the policies, the agents and the plot."""
        summary = summary_table(table)
        where = torch_device_description(resolve_device(args.device))
        device_name = torch_device_description(resolve_device(args.device), versions=False)
        plot_path, plot_link = self.figure(args)
        plot_mean_against_cost(summary, "policy ms / episode", "success_mean", "success_se", plot_path,
                               f"policy compute per episode (ms, {device_name})", "success rate (± standard error)",
                               f"{args.task}, {args.episodes} episodes")
        return "\n".join([
            f"Success rate (mean ± standard error over {args.episodes} episodes, seeds {args.seed}…, and its 95% "
            "percentile-bootstrap interval, 10,000 resamples of the episodes), compute and "
            "control frequency per episode. Policy compute is the control loop's wall time in System 1 and waiting "
            f"for System 2, with the policies on {where} (simulation and rendering, on the CPU, excluded); control "
            "Hz = policy calls per second of it. The synchronous runner runs System 2 before System 1 at a refresh; "
            "the asynchronous one (\"async\") runs it on a worker thread beside System 1 and the simulation, its "
            "tokens taking effect at the next refresh.",
            *(["On PushT the first column is the mean final goal coverage with its 95% percentile-bootstrap "
               "interval (10,000 resamples of the episodes), the second Chi et al.'s score (per episode the largest "
               "coverage divided by 0.95, capped at 1; Diffusion Policy's PushT runner); success is coverage > "
               "0.95."] if "coverage_mean" in summary
              else []),
            "", markdown_table(summary.drop(columns=["success_mean", "success_se", "coverage_mean"],
                                            errors="ignore"), "{:.4g}"), "",
            "Policies:", "", *table.attrs["policies"], "",
            *(["Refresh agents:", "", *[agent_provenance(path) for path in args.agent], ""] if args.agent else []),
            f"![success vs compute]({plot_link})",
        ])


def finish(tables: list[pd.DataFrame], details: list[str], task: str) -> pd.DataFrame:
    """The rows of all ``tables`` as one, with the policies' descriptions in ``attrs["policies"]``; on PushT
    with each episode's final ``coverage`` (1 − its final distance) and Chi et al.'s ``score``, the episode's
    largest coverage over the success line, min(max_t coverage_t / 0.95, 1) (Diffusion Policy's PushT runner)."""
    table = pd.concat(tables, ignore_index=True)
    if robot_task(task).env_id == PUSHT_ENV_ID:
        table["coverage"] = 1.0 - table["final_distance"]
        table["score"] = np.minimum((1.0 - table["best_distance"]) / SUCCESS_COVERAGE, 1.0)
    table.attrs["policies"] = details
    return table


def bootstrap_interval(values: np.ndarray, resamples: int = 10_000, level: float = 0.95,
                       seed: int = 0) -> tuple[float, float]:
    """The percentile bootstrap interval of the mean of ``values`` (Efron 1979), from ``resamples`` resamples."""
    values = np.asarray(values, dtype=float)
    rng = np.random.default_rng(seed)
    means = values[rng.integers(len(values), size=(resamples, len(values)))].mean(axis=1)
    return tuple(float(bound) for bound in np.quantile(means, [(1 - level) / 2, (1 + level) / 2]))


def checked_device(name: str) -> torch.device:
    """The torch device of ``--device``, which must be there.

    Raises:
        SystemExit: If it names CUDA and no GPU is visible.
    """
    device = resolve_device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {name} needs a CUDA GPU and none is visible here; use cpu or auto")
    return device


def parse_runners(text: str) -> list[str]:
    """``--runner`` (``sync``, ``async`` or both, comma-separated) as a list.

    Raises:
        SystemExit: If it names an unknown runner.
    """
    runners = text.split(",")
    if any(runner not in RUNNERS for runner in runners):
        raise SystemExit(f"--runner must list some of {list(RUNNERS)}, got {text!r}")
    return runners


def _method(asynchronous: bool, schedule: str) -> str:
    """A dual-system row's name: its runner and its refresh schedule."""
    return f"dual system{' async' * asynchronous}, {schedule}"


def dual_system_controllers(args: argparse.Namespace, runners: list[str],
                            controllers: list[Controller]) -> Iterator[tuple[str, Controller]]:
    """(method, controller) of every dual-system row, in the table's order.

    The fixed periods per runner, period and solver steps, the hand-made controllers, then the agents (each on the
    runner it was trained with).

    Args:
        args: The benchmark's options (``refresh``, ``solver_steps``, ``agent``).
        runners: The runners of the fixed periods (``sync``, ``async``).
        controllers: The hand-made controllers.
    """
    for runner in runners:
        for k in args.refresh:
            for steps in args.solver_steps or [None]:
                overrides = {"asynchronous": RUNNERS[runner]} | ({"steps_choices": [steps]} if steps else {})
                schedule = f"k = {k}" + (f", {steps} solver steps" if steps else "")
                yield (_method(RUNNERS[runner], schedule),
                       PeriodicRefresh(f"refresh:every={k}", k, steps, env_overrides=overrides))
    for controller in controllers:
        asynchronous = bool(controller.env_overrides.get("asynchronous"))
        yield _method(asynchronous, controller.name.partition("@")[0]), controller
    for path in args.agent:
        agent = ModelController(f"learned refresh ({path.parent.name})", path)
        yield _method(bool(agent.env_overrides.get("asynchronous")), agent.name), agent


def diffusion_policy_rows(policy: Any, task: str, seed: int, episodes: int,
                          action_steps: int | None) -> pd.DataFrame:
    """Off-env measurement of plain Diffusion Policy episodes through the runner.

    It has no System 2 to schedule, so no env; the rows have the columns of the dual-system env's harness rows.

    Args:
        policy (DiffusionPolicy): The policy.
        task: The robot task.
        seed: The first episode's seed.
        episodes: The number of episodes, seeded ``seed``, ``seed + 1``, ….
        action_steps: The actions executed per policy call; None for the policy's own.
    """
    env = make_robot_env(task, image_size=policy.config.image_size)
    try:
        execution = PolicyExecution(policy, env, action_steps)
        summaries = [run_policy_episode(execution, episode_seed) for episode_seed in range(seed, seed + episodes)]
    finally:
        env.close()
    return pd.DataFrame([off_env_row(DIFFUSION_POLICY, summary.seed, summary.compute, success=float(summary.success),
                                     final_distance=summary.final_distance,
                                     best_distance=summary.best_distance, calls=summary.calls,
                                     system2_calls=summary.system2_calls, policy_seconds=summary.policy_seconds,
                                     system1_seconds=summary.system1_seconds, system2_seconds=summary.system2_seconds,
                                     method=DIFFUSION_POLICY) for summary in summaries])


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    """The per-method summary of the benchmark's rows.

    Per method: on PushT the mean final coverage and Chi et al.'s score with their bootstrap intervals, then
    success rate ± standard error and its bootstrap interval, final distance, calls, System-2 calls and compute
    per episode, success per System-1 call, policy milliseconds per episode, control Hz, success per
    policy-second, episodes.
    """
    def describe(group: pd.DataFrame) -> pd.Series:
        success = group["success"].to_numpy(dtype=float)
        error = success.std(ddof=1) / np.sqrt(len(success)) if len(success) > 1 else float("nan")
        seconds = group["policy_seconds"].sum()
        coverage = {}
        if "coverage" in group:
            low, high = bootstrap_interval(group["coverage"].to_numpy())
            score_low, score_high = bootstrap_interval(group["score"].to_numpy())
            coverage = {"final coverage [95% CI]": f"{group['coverage'].mean():.3f} [{low:.3f}, {high:.3f}]",
                        "Chi et al. score [95% CI]": f"{group['score'].mean():.3f} [{score_low:.3f}, "
                                                     f"{score_high:.3f}]",
                        "coverage_mean": group["coverage"].mean()}
        success_low, success_high = bootstrap_interval(success)
        return pd.Series({**coverage,
            "success": f"{success.mean():.2f} ± {error:.2f}",
            "success [95% CI]": f"[{success_low:.2f}, {success_high:.2f}]",
            "success_mean": success.mean(), "success_se": error,
            "final distance": group["final_distance"].mean(), "calls / episode": group["calls"].mean(),
            "System-2 calls / episode": group["system2_calls"].mean(),
            "compute / episode (S1 calls)": group["cost"].mean(),
            "success / S1 call": success.sum() / group["cost"].sum(),
            "policy ms / episode": 1000 * group["policy_seconds"].mean(),
            "control Hz": group["calls"].sum() / seconds, "success / policy-s": success.sum() / seconds,
            "episodes": len(group)})

    return table.groupby("method", sort=False).apply(describe, include_groups=False).reset_index()


def torch_device_description(device: torch.device, versions: bool = True) -> str:
    """Where torch code ran: one CPU thread, or the GPU's name.

    Args:
        device: The device.
        versions: Add torch's and CUDA's versions to a GPU's name.
    """
    if device.type != "cuda":
        return f"one {device.type.upper()} thread"
    name = torch.cuda.get_device_name(device)
    return f"{name} (torch {torch.__version__}, CUDA {torch.version.cuda})" if versions else name


def _training(metadata: dict) -> str:
    """How a policy was trained, from its checkpoint's metadata."""
    steps, seconds = metadata.get("steps"), metadata.get("seconds", 0)
    episodes = metadata.get("episodes", "?")
    video = metadata.get("video_model", {})
    device = metadata.get("device") or video.get("device", "?")
    config = metadata.get("config", {})
    observed = (f"{config.get('image_size', '?')}×{config.get('image_size', '?')} images"
                if config.get("images", True) else "state (proprio alone)")
    text = (f"trained {steps} steps (batch {metadata.get('batch_size', '?')}, lr {metadata.get('lr', '?')}) on "
            f"{episodes} demonstrations of {observed} in {seconds / 60:.1f} min on {device}")
    if video:
        text += (f"; its video model trained {video.get('steps')} steps in {video.get('seconds', 0) / 60:.1f} min "
                 f"(final loss {video.get('final_loss', float('nan')):.4f}), System-2 features of every frame took "
                 f"{metadata.get('feature_seconds', 0) / 60:.1f} min")
    return text
