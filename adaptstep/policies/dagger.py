"""DAgger for a chunk policy (Ross, Gordon & Bagnell 2011).

The trained policy drives the robot, and the scripted expert, which can act from any state, labels every state the
policy visits with the action it would take there. Trained on these labels beside the expert's own demonstrations,
the policy learns to recover from its own drift (one DAgger iteration with β = 0 for the new data).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

import gymnasium
import mujoco
import numpy as np
from tqdm.auto import tqdm

from adaptstep._version import __version__
from adaptstep.policies.demos import Demonstrations
from adaptstep.policies.runner import PolicyExecution, is_dual_system, run_policy_episode
from adaptstep.policies.task import make_expert, make_robot_env, robot_task


class ExpertLabels(gymnasium.Wrapper):
    """Records, before each step, the observation, its target jumps and the expert's action from the current state.

    The expert's action is recorded whatever action is then executed.

    Args:
        env: The robot env.
        expert (callable): The scripted expert, called as ``expert(env)`` for an action.
        reset_options: Options passed to every reset.
    """

    def __init__(self, env: gymnasium.Env, expert: Any, reset_options: dict | None = None) -> None:
        super().__init__(env)
        self.expert, self.reset_options = expert, dict(reset_options or {})
        self.images, self.proprio, self.labels, self.jumps = [], [], [], []

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        """Reset the env with ``reset_options`` updated by ``options``."""
        self._observation, self._info = self.env.reset(seed=seed, options={**self.reset_options, **(options or {})})
        return self._observation, self._info

    def step(self, action):
        """Record the observation, its target jumps and the expert's label, then step with ``action``."""
        self.images.append(self._observation["image"])
        self.proprio.append(self._observation["proprio"])
        self.jumps.append(self._info.get("target_jumps", 0))
        self.labels.append(self.expert(self.env))
        self._observation, reward, terminated, truncated, self._info = self.env.step(action)
        return self._observation, reward, terminated, truncated, self._info


def _check_refresh(refresh_every: tuple[int, ...]) -> tuple[int, ...]:
    if not (isinstance(refresh_every, (tuple, list)) and len(refresh_every) >= 1
            and all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in refresh_every)):
        raise ValueError(f"refresh_every must be a non-empty sequence of ints >= 1, got {refresh_every!r}")
    return tuple(refresh_every)


def make_dagger_demos(policy: Any, task: str = "reacher-moving", episodes: int = 200, seed: int = 10_000,
                      refresh_every: tuple[int, ...] = (1,), jump_again: tuple[int, int] | None = None,
                      elbow: str = "positive", progress: bool = False) -> Demonstrations:
    """Episodes driven by ``policy`` and labelled by the task's scripted expert.

    The policy runs as ``PolicyExecution`` with its defaults; the expert is ``ReacherExpert(elbow=elbow)``, reacting to
    a jump at once. A dual system refreshes System 2 every ``refresh_every[e % len(refresh_every)]`` calls in
    episode e, so the states are those of the refresh rates a controller will choose.

    Args:
        policy: A trained Diffusion Policy or dual system.
        task: The robot task.
        episodes: The number of episodes.
        seed: Episode e resets with seed ``seed + e``.
        refresh_every: The dual system's System-2 refresh periods, cycled over episodes (each an int >= 1).
        jump_again: As in ``make_demos``.
        elbow: The expert's elbow branch, ``"positive"`` or ``"nearest"``.
        progress: Show a progress bar.

    Returns:
        The demonstrations: ``actions`` are the expert's labels, not the executed actions; ``success`` is the policy's.

    Raises:
        ValueError: If ``refresh_every`` is not a non-empty sequence of ints >= 1.
    """
    spec = robot_task(task)
    if isinstance(episodes, bool) or not isinstance(episodes, int | np.integer) or episodes < 1:
        raise ValueError(f"episodes must be an int >= 1, got {episodes!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ValueError(f"seed must be an int, got {seed!r}")
    refresh_every = _check_refresh(refresh_every)
    expert = make_expert(task, elbow)
    env = ExpertLabels(make_robot_env(task, policy.config.image_size), expert,
                       {} if jump_again is None else {"jump_again": tuple(jump_again)})
    execution = PolicyExecution(policy, env)
    ends, success = [], []
    try:
        for episode in tqdm(range(episodes), desc=f"dagger {task}", unit="episode", disable=not progress):
            summary = run_policy_episode(execution, int(seed) + episode, refresh_every[episode % len(refresh_every)])
            if len(env.labels) > (ends[-1] if ends else 0):  # not an episode whose first action was non-finite
                ends.append(len(env.labels))
                success.append(summary.success)
    finally:
        execution.close()
        env.close()

    metadata = {
        "task": task,
        "image_size": int(policy.config.image_size),
        "seeds": list(range(int(seed), int(seed) + episodes)),
        "jump_again": None if jump_again is None else [int(gap) for gap in jump_again],
        "dagger": {"policy_demos": getattr(policy, "metadata", {}).get("demos", "?"),
                   "dual_system": is_dual_system(policy), "refresh_every": list(refresh_every),
                   "policy_success": float(np.mean(success))},
        "expert": {"name": type(expert).__name__, **vars(expert)},
        "versions": {"adaptstep": __version__, "gymnasium": gymnasium.__version__,
                     "mujoco": mujoco.__version__, "numpy": np.__version__},
        "made_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    return Demonstrations(np.stack(env.images), np.stack(env.proprio).astype(np.float32),
                          np.stack(env.labels).astype(np.float32), np.array(ends, dtype=np.int64),
                          np.array(success, dtype=bool), metadata,
                          np.array(env.jumps, dtype=np.int64) if spec.target_jump is not None else None)
