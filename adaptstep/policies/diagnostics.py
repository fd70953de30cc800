"""Open-loop checks of a chunk policy on its demonstrations: what one fresh call would do at a given step.

``call_errors`` runs one call at chosen demonstration steps (for a dual system, System 2 on that step's window, then
System 1) and compares the ``action_steps`` actions it would execute with the expert's there: the mean absolute
error per step. It isolates the states a closed-loop failure starts from, e.g. the call right after a target jumps
(``reaction_starts``), from the drift that follows. ``python -m adaptstep.policies.diagnostics DEMOS POLICY …`` prints
the errors of dual systems around the target's jump as a Markdown table.

``target_sensitivity`` asks whether System 1 reads the target from System 2 at all: it turns the target in the
scene System 2 sees and compares how much the policy's next action changes with how much the expert's does.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from adaptstep.policies.demos import load_demos
from adaptstep.policies.dual_system import load_dual_system
from adaptstep.policies.runner import is_dual_system
from adaptstep.policies.task import make_expert, make_robot_env
from adaptstep.policies.windows import episode_bounds, reaction_starts, window_indices


def call_errors(policy: Any, demos, steps: np.ndarray, still: bool = False, sampling_steps: int | None = None,
                seed: int = 0) -> np.ndarray:
    """Mean absolute error of the executed actions of one fresh call at each demonstration step in ``steps``.

    The actions are compared with the expert's there (as many as remain in the episode). Windows are cut as in
    training (indices before the episode's start repeat its first step).

    Args:
        policy: A Diffusion Policy or dual system.
        demos (Demonstrations): The demonstrations.
        steps: Demonstration steps, a non-empty 1-D array of indices in [0, N).
        still: Repeat the step's own frame over the whole window instead, as a scene without motion shows it.
        sampling_steps: The action head's solver steps; None for its default (10 for a Diffusion Policy).
        seed: Seeds the sampling noise.

    Returns:
        The errors, shape (len(steps),).

    Raises:
        ValueError: If ``steps`` is empty, not 1-D or out of range.
    """
    steps = np.asarray(steps, dtype=np.int64)
    ends = episode_bounds(demos.episode_ends)[1]
    if steps.ndim != 1 or len(steps) == 0 or steps.min() < 0 or steps.max() >= ends[-1]:
        raise ValueError(f"steps must be a non-empty 1-D array of demonstration steps in [0, {ends[-1]}), "
                         f"got {steps}")
    end = ends[np.searchsorted(ends, steps, side="right")]
    config = policy.config
    frames = policy.system2_frames if is_dual_system(policy) else config.obs_horizon
    frame_index = window_indices(demos.episode_ends, config.obs_horizon, config.pred_horizon, frames)[0][steps]
    proprio = demos.proprio[frame_index[:, -config.obs_horizon:]]
    if still:
        frame_index = np.repeat(steps[:, None], frames, axis=1)
    images = demos.images[frame_index]
    if is_dual_system(policy):
        chunks, _ = policy.system1(policy.system2(images), proprio, steps=sampling_steps, seed=seed)
    else:
        chunks, _ = policy.predict(images[:, -config.obs_horizon:], proprio, steps=sampling_steps or 10, seed=seed)
    executed = np.asarray(chunks)[:, config.obs_horizon - 1: config.obs_horizon - 1 + config.action_steps]
    errors = np.empty(len(steps))
    for row, (step, stop) in enumerate(zip(steps, end)):
        expert = demos.actions[step: min(step + config.action_steps, stop)]
        errors[row] = np.abs(executed[row, :len(expert)] - expert).mean()
    return errors


def target_sensitivity(policy: Any, task: str = "reacher", at: int = 25, turns: tuple[float, ...] = (0.1, 0.3, 0.6),
                       seeds: range | list[int] = range(30), seed: int = 0) -> dict[float, tuple[float, float]]:
    """How much a dual system's first action and the expert's change when the target turns.

    System 2 sees a still window of the scene (the frame repeated), System 1 the unchanged proprioception and the
    same noise. A policy change near the expert's means System 1 follows the target in System 2's tokens; near
    zero, that it ignores them there.

    Args:
        policy: A dual system.
        task: The robot task.
        at: The steps the expert drives each episode before the target turns.
        turns: The target's turns about the arm's base, in rad.
        seeds: The episodes' seeds.
        seed: Seeds the sampling noise.

    Returns:
        {turn: (policy change, expert change)}, mean absolute changes of the first executed action.

    Raises:
        ValueError: If ``policy`` is not a dual system.
    """
    if not is_dual_system(policy):
        raise ValueError(f"policy must be a dual system (with system2 and system1), got {type(policy).__name__}")
    config, expert = policy.config, make_expert(task)
    env = make_robot_env(task, image_size=config.image_size)
    changes: dict[float, list[tuple[float, float]]] = {turn: [] for turn in turns}
    try:
        for episode in seeds:
            observation, _ = env.reset(seed=int(episode))
            for _ in range(at):
                observation = env.step(expert(env))[0]
            proprio = np.stack([observation["proprio"]] * config.obs_horizon)[None]
            answers, turned = [], 0.0
            for turn in (0.0, *turns):  # the next episode's reset puts the target back
                image, turned = env.turn_target(turn - turned)["image"], turn
                tokens = policy.system2(np.stack([image] * policy.system2_frames)[None])
                chunks, _ = policy.system1(tokens, proprio, seed=seed)
                answers.append((np.asarray(chunks)[0, config.obs_horizon - 1], expert(env)))
            for turn, (action, expert_action) in zip(turns, answers[1:]):
                changes[turn].append((float(np.abs(action - answers[0][0]).mean()),
                                      float(np.abs(expert_action - answers[0][1]).mean())))
    finally:
        env.close()
    return {turn: tuple(np.mean(rows, axis=0).tolist()) for turn, rows in changes.items()}


def jump_steps(demos) -> np.ndarray:
    """The first step after each jump of the target at which the expert reacts to it.

    That is the first step whose observation shows the jump (``demos.target_jumps``), or, where the expert waits
    first (``demos.expert_waits``), the first step after its wait.

    Args:
        demos (Demonstrations): Demonstrations of a task whose target jumps.

    Raises:
        ValueError: If the demonstrations have no ``target_jumps``.
    """
    if getattr(demos, "target_jumps", None) is None:
        raise ValueError("demos.target_jumps is None: these demonstrations have no target jump")
    first = reaction_starts(demos.episode_ends, demos.target_jumps, getattr(demos, "expert_waits", None))
    first[episode_bounds(demos.episode_ends)[0]] = False
    return np.flatnonzero(first)


JUMP_ROWS = {"episode start": (None, False), "jump − 4": (-4, False), "jump": (0, False),
             "jump, still window": (0, True), "jump + 2": (2, False), "jump + 4": (4, False), "jump + 8": (8, False)}


def main(argv: list[str] | None = None) -> None:
    """Mean ``call_errors`` of each dual system at the first ``--episodes`` episodes' starts and around their jumps."""
    parser = argparse.ArgumentParser(prog="python -m adaptstep.policies.diagnostics", description=main.__doc__)
    parser.add_argument("demos", help="demonstrations with target_jumps (adaptstep data make reacher-moving-demos)")
    parser.add_argument("policies", nargs="+", help="dual-system checkpoints")
    parser.add_argument("--episodes", type=int, default=40)
    args = parser.parse_args(argv)
    demos = load_demos(args.demos)
    starts = episode_bounds(demos.episode_ends)[0][:args.episodes]
    jumps = jump_steps(demos)
    jumps = jumps[jumps < demos.episode_ends[len(starts) - 1]]
    print("| policy | " + " | ".join(JUMP_ROWS) + " |")
    print("|---" * (len(JUMP_ROWS) + 1) + "|")
    for path in args.policies:
        policy = load_dual_system(path, device="cpu")
        cells = [call_errors(policy, demos, starts if offset is None else jumps + offset, still).mean()
                 for offset, still in JUMP_ROWS.values()]
        print(f"| {path} | " + " | ".join(f"{cell:.3f}" for cell in cells) + " |")


if __name__ == "__main__":
    main()
