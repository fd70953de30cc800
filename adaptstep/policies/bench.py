"""Robot benchmark: success rate against policy compute for Diffusion Policy and the dual system's refresh schedules.

On the same episode seeds: the plain Diffusion Policy (``--diffusion-policy PATH``), the dual system
(``--dual-system PATH``) refreshing System 2 every k calls for each k of ``--refresh`` on
``adaptstep/DualSystem-v0`` through the shared harness, with the synchronous runner and the asynchronous one
(``--runner``, ``adaptstep.policies.runner``), each at the action head's own solver steps or at each of
``--solver-steps``, hand-made refresh controllers such as the event-triggered
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
import shlex
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import torch

from adaptstep.agents.controllers import ModelController, agent_provenance, parse_controller
from adaptstep.policies.baselines import PeriodicRefresh
from adaptstep.core.report import machine_description, markdown_table, section_figure, write_section
from adaptstep.diffusion.device import resolve_device
from adaptstep.evaluation import run_episode
from adaptstep.plotting import plot_mean_against_cost
from adaptstep.policies.runner import PolicyExecution, measure_system2_cost
from adaptstep.policies.runner import run_episode as run_policy_episode
from adaptstep.policies.task import TASKS, make_robot_env

ENV_ID = "adaptstep/DualSystem-v0"
RUNNERS = {"sync": False, "async": True}  # --runner: DualSystem-v0's asynchronous


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--task", default="reacher", choices=sorted(TASKS))
    parser.add_argument("--diffusion-policy", type=Path, help="a Diffusion Policy checkpoint (adaptstep train-robot)")
    parser.add_argument("--dual-system", type=Path, required=True, help="a dual-system checkpoint")
    parser.add_argument("--refresh", default="1,2,4,8", type=positive_ints,
                        help="System-2 refresh periods k to compare")
    parser.add_argument("--solver-steps", default=[], type=positive_ints,
                        help="System-1 solver steps of the fixed periods, e.g. 2,5 (default: the policy's own)")
    parser.add_argument("--runner", default="sync,async",
                        help="runners of the fixed periods: sync, async or both (System 2 on a worker thread)")
    parser.add_argument("--controller", action="append", default=[],
                        help="a hand-made refresh controller, e.g. refresh:every=8,change=0.007 or "
                             "refresh:every=20,target_change=0.007 (event-triggered); "
                             "repeatable, synchronous unless it ends in @asynchronous=true")
    parser.add_argument("--agent", action="append", default=[], type=Path,
                        help="a learned refresh agent (model.zip trained on adaptstep/DualSystem-v0); repeatable")
    parser.add_argument("--episodes", type=int, default=50, help="episodes (task seeds) per row")
    parser.add_argument("--seed", type=int, default=20_000, help="first episode seed")
    parser.add_argument("--action-steps", type=int, default=None, help="actions executed per call (policy's own)")
    parser.add_argument("--device", default="auto",
                        help="where the policies run: auto (CUDA when present), cpu or cuda")
    parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"))
    parser.add_argument("--section", default=None,
                        help="BENCHMARKS.md section name (default robot-<task>, robot-<task>-cuda on a GPU)")
    parser.add_argument("--plot", type=Path, default=None, help="default benchmarks/<section>.png beside --out")


def _method(asynchronous: bool, schedule: str) -> str:
    """A dual-system row's name: its runner and its refresh schedule."""
    return f"dual system{' async' * asynchronous}, {schedule}"


def _row(summary, method: str) -> dict:
    return {"method": method, "seed": summary.seed, "success": float(summary.success),
            "final_distance": summary.final_distance, "calls": summary.calls, "system2_calls": summary.system2_calls,
            "cost": summary.compute, "policy_seconds": summary.policy_seconds}


def policy_rows(policy, task: str, seeds: list[int], action_steps: int | None, method: str) -> list[dict]:
    """Plain Diffusion Policy episodes through the runner (it has no System 2 to schedule)."""
    env = make_robot_env(task, image_size=policy.config.image_size)
    try:
        execution = PolicyExecution(policy, env, action_steps)
        return [_row(run_policy_episode(execution, seed), method) for seed in seeds]
    finally:
        env.close()


def env_rows(controller, env_kwargs: dict, seeds: list[int], method: str) -> list[dict]:
    """Dual-system episodes of ``controller`` on ``adaptstep/DualSystem-v0`` through the shared harness."""
    env = gym.make(ENV_ID, **{**env_kwargs, **controller.env_overrides})
    try:
        rows = []
        for seed in seeds:
            run_episode(env, controller, seed)
            rows.append(_row(env.unwrapped.execution.summary(), method))
        return rows
    finally:
        env.close()


def summary_table(table: pd.DataFrame) -> pd.DataFrame:
    def describe(group: pd.DataFrame) -> pd.Series:
        success = group["success"].to_numpy()
        error = success.std(ddof=1) / np.sqrt(len(success)) if len(success) > 1 else float("nan")
        seconds = group["policy_seconds"].sum()
        return pd.Series({
            "success": f"{success.mean():.2f} ± {error:.2f}", "success_mean": success.mean(), "success_se": error,
            "final distance": group["final_distance"].mean(), "calls / episode": group["calls"].mean(),
            "System-2 calls / episode": group["system2_calls"].mean(),
            "compute / episode (S1 calls)": group["cost"].mean(),
            "success / S1 call": success.sum() / group["cost"].sum(),
            "policy ms / episode": 1000 * group["policy_seconds"].mean(),
            "control Hz": group["calls"].sum() / seconds, "success / policy-s": success.sum() / seconds,
            "episodes": len(group)})

    return table.groupby("method", sort=False).apply(describe, include_groups=False).reset_index()


def run(args: argparse.Namespace) -> None:
    from adaptstep.policies.diffusion_policy import load_diffusion_policy
    from adaptstep.policies.dual_system import load_dual_system

    torch.set_num_threads(1)
    started = time.perf_counter()
    device = resolve_device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device} needs a CUDA GPU and none is visible here; use cpu or auto")
    where = torch_device_description(device)
    runners = args.runner.split(",")
    if any(runner not in RUNNERS for runner in runners):
        raise SystemExit(f"--runner must list some of {list(RUNNERS)}, got {args.runner!r}")
    controllers = [parse_controller(spec) for spec in args.controller]
    seeds = list(range(args.seed, args.seed + args.episodes))
    rows, details = [], []
    if args.diffusion_policy:
        baseline = load_diffusion_policy(args.diffusion_policy, device)
        rows += policy_rows(baseline, args.task, seeds, args.action_steps, "Diffusion Policy")
        details.append(f"- Diffusion Policy: `{args.diffusion_policy}`, {_training(baseline.metadata)}")
    dual = load_dual_system(args.dual_system, device)
    system2_cost = measure_system2_cost(dual)
    details.append(f"- dual system: `{args.dual_system}`, {_training(dual.metadata)}; one System-2 call costs "
                   f"{system2_cost:.1f} System-1 calls (measured here)")
    env_kwargs = {"policy": dual, "task": args.task, "action_steps": args.action_steps, "system2_cost": system2_cost}
    for runner in runners:
        for k in args.refresh:
            for steps in args.solver_steps or [None]:
                overrides = {"asynchronous": RUNNERS[runner]} | ({"steps_choices": [steps]} if steps else {})
                controller = PeriodicRefresh(f"refresh:every={k}", k, steps, env_overrides=overrides)
                schedule = f"k = {k}" + (f", {steps} solver steps" if steps else "")
                rows += env_rows(controller, env_kwargs, seeds, _method(RUNNERS[runner], schedule))
    for controller in controllers:
        asynchronous = bool(controller.env_overrides.get("asynchronous"))
        rows += env_rows(controller, env_kwargs, seeds, _method(asynchronous, controller.name.partition("@")[0]))
    for path in args.agent:
        agent = ModelController(f"learned refresh ({path.parent.name})", path)
        method = _method(bool(agent.env_overrides.get("asynchronous")), f"learned refresh ({path.parent.name})")
        rows += env_rows(agent, env_kwargs, seeds, method)
    summary = summary_table(pd.DataFrame(rows))
    section = args.section or f"robot-{args.task}" + ("" if device.type == "cpu" else f"-{device.type}")
    plot_path, plot_link = section_figure(args.out, section, args.plot)
    device_name = torch_device_description(device, versions=False)  # "one CPU thread" or the GPU's name
    x_label = f"policy compute per episode (ms, {device_name})"
    plot_mean_against_cost(summary, "policy ms / episode", "success_mean", "success_se", plot_path, x_label,
                           "success rate (± standard error)", f"{args.task}, {args.episodes} episodes")
    command = "adaptstep bench robot " + " ".join(shlex.quote(arg) for arg in sys.argv[3:])
    body = [
        f"## Robot policies: {args.task}" + ("" if device.type == "cpu" else f" on {device_name}")
        + (f" ({args.section})" if args.section else ""),
        f"Command: `{command}`  ",
        f"Machine: {machine_description(('numpy', 'torch', 'stable-baselines3', 'gymnasium', 'mujoco'))}; "
        f"policies on {where}; {time.perf_counter() - started:.0f} s.",
        "",
        f"Success rate (mean ± standard error over {args.episodes} episodes, seeds {args.seed}…), compute and "
        "control frequency per episode. Policy compute is the control loop's wall time in System 1 and waiting for "
        f"System 2, with the policies on {where} (simulation and rendering, on the CPU, excluded); control Hz = "
        "policy calls per second of it. The synchronous runner runs System 2 before System 1 at a refresh; the "
        "asynchronous one (\"async\") runs it on a worker thread beside System 1 and the simulation, its tokens "
        "taking effect at the next refresh.",
        "", markdown_table(summary.drop(columns=["success_mean", "success_se"]), "{:.4g}"), "",
        "Policies:", "", *details, "",
        *(["Refresh agents:", "", *[agent_provenance(path) for path in args.agent], ""] if args.agent else []),
        f"![success vs compute]({plot_link})",
    ]
    write_section(args.out, section, "\n".join(body))
    print("\n".join(body))


def torch_device_description(device: torch.device, versions: bool = True) -> str:
    """Where torch code ran: one CPU thread, or the GPU's name (with torch's and CUDA's versions)."""
    if device.type != "cuda":
        return f"one {device.type.upper()} thread"
    name = torch.cuda.get_device_name(device)
    return f"{name} (torch {torch.__version__}, CUDA {torch.version.cuda})" if versions else name


def positive_ints(text: str) -> list[int]:
    """``"1,2,4"`` -> [1, 2, 4], for options that list ints >= 1."""
    try:
        values = [int(item) for item in text.split(",")]
    except ValueError:
        values = []
    if not values or any(value < 1 for value in values):
        raise argparse.ArgumentTypeError(f"must list ints >= 1 such as 2,5, got {text!r}")
    return values


def _training(metadata: dict) -> str:
    steps, seconds = metadata.get("steps"), metadata.get("seconds", 0)
    episodes = metadata.get("episodes", "?")
    video = metadata.get("video_model", {})
    device = metadata.get("device") or video.get("device", "?")
    image_size = metadata.get("config", {}).get("image_size", "?")
    text = (f"trained {steps} steps (batch {metadata.get('batch_size', '?')}, lr {metadata.get('lr', '?')}) on "
            f"{episodes} demonstrations of {image_size}×{image_size} images in {seconds / 60:.1f} min on {device}")
    if video:
        text += (f"; its video model trained {video.get('steps')} steps in {video.get('seconds', 0) / 60:.1f} min "
                 f"(final loss {video.get('final_loss', float('nan')):.4f}), System-2 features of every frame took "
                 f"{metadata.get('feature_seconds', 0) / 60:.1f} min")
    return text
