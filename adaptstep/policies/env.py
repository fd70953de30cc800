"""``adaptstep/DualSystem-v0``: decide at every policy call whether a dual-system robot policy refreshes System 2.

System 2 is the slow part (video-diffusion features); not refreshing it reuses the cached features.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from adaptstep.core.contract import AdaptiveEnv, Metric, check_parameters
from adaptstep.core.settings import require_bool
from adaptstep.policies.dual_system import load_dual_system
from adaptstep.policies.runner import PolicyExecution, is_dual_system, measure_system2_cost
from adaptstep.policies.task import make_robot_env, robot_task, target_colour_weight
from adaptstep.zoo import zoo_path

FAILURE_PENALTY = -1.0
DEFAULT_POLICIES = {"reacher": "zoo:dual-system-reacher"}  # the shipped dual system of ``policy=None``


class DualSystemEnv(AdaptiveEnv):
    """Choose at every call of a trained dual-system policy whether to refresh its System 2.

    The policy (``adaptstep train-robot dual-system``) acts in a robot ``task`` (``adaptstep.policies.task``); one
    env step is one policy call (``adaptstep.policies.runner``).

    Action: ``Discrete(2)``, 1 refreshes System 2 before System 1 runs, 0 reuses the cached tokens (the first call
    of an episode always refreshes). With ``steps_choices`` (e.g. ``[2, 5, 10]``) the action is
    ``MultiDiscrete([2, len(steps_choices)])`` and its second entry picks the action head's solver steps.

    Observation (float32): the episode's progress (calls / calls per episode), calls since the last refresh and
    the age of System 1's tokens (calls since their frames were taken; one refresh older with ``asynchronous``),
    both / calls per episode, the mean absolute pixel change (in [0, 1]) of the newest frame since the tokens'
    frame and since the previous frame, the largest such one-step change over the last call's steps (a scene that
    jumps, as in ``reacher-moving``, shows there wherever in the call it jumped, but so does a fast arm), the same
    largest one-step change of the target's colour weight (``target_colour_weight``: the target's jump shows there,
    the arm's motion hardly), the previous action's refresh flag, and the proprioception.

    On PushT (``task="pusht"``) the distance is 1 − the goal coverage, so ``final_distance`` is the uncovered share of
    the goal and the reward's first term the share of the initially uncovered goal that the call covered.

    Reward: the fraction of the initial fingertip–target distance closed by the call's actions, plus
    ``success_bonus`` at the end of a successful episode, minus ``compute_weight`` · the call's compute / (1 +
    system2_cost), so a call that refreshes costs ``compute_weight``. Compute is counted in System-1 calls at the
    policy's own solver steps (a call at s steps counts s / those steps); a System-2 call costs ``system2_cost`` of
    them (measured on this machine when None). A non-finite action ends the episode with reward −1 and
    ``info["failure"]``.

    Info: ``cost`` (compute so far), ``success``, ``final_distance``, ``system2_calls``, ``calls``; ``gym.make``'s
    ``WallTime`` adds the policy's seconds at the end (``policy_seconds``, ``system1_seconds``, ``system2_seconds``:
    see ``timings``), so that ``info`` repeats exactly.

    Args:
        policy (str | Path | DualSystemPolicy): A dual-system checkpoint path, ``zoo:NAME`` or a loaded policy;
            None for the task's shipped default (``DEFAULT_POLICIES``: a small dual system on reacher).
        task: The robot task, a key of the robot tasks (``reacher``, ``reacher-moving``, …).
        action_steps: The actions executed per policy call; None for the policy's own.
        steps_choices: The action head's solver steps to choose from (e.g. ``[2, 5, 10]``); None for the policy's
            own steps only.
        compute_weight: The reward's price of a refreshing call (>= 0).
        success_bonus: The reward at the end of a successful episode (>= 0).
        system2_cost: A System-2 call's compute in System-1 calls; None to measure it on this machine.
        asynchronous: Run System 2 on a worker thread; a refresh's tokens then take effect at the next refresh
            (``adaptstep.policies.runner``).
        device: The torch device of a policy loaded from a path, ``"auto"`` for CUDA when present.
        render_mode: None only (this env does not render).

    Raises:
        ValueError: If ``policy`` is missing or not a dual system, or a kwarg is out of range.
    """

    metadata = {"render_modes": []}
    # the observation's entries before the proprioception
    features = ("progress", "calls_since_refresh", "tokens_age", "change_since_refresh", "change_since_last",
                "largest_step_change", "largest_step_target_change", "last_refresh")
    metrics = (Metric("success", True, "1 if the fingertip reached the target"),
               Metric("final_distance", description="fingertip-target distance at the end"),
               Metric("best_distance", description="the least fingertip-target distance of the episode"))
    summary_keys = ("calls", "system2_calls")
    timing_keys = ("policy_seconds", "system1_seconds", "system2_seconds")
    cost_unit = "System-1 calls"
    agent_kwargs = ("task", "steps_choices", "action_steps", "asynchronous")  # what a trained agent's env must match

    def __init__(self, policy: str | Path | Any = None, task: str = "reacher", action_steps: int | None = None,
                 steps_choices: Sequence[int] | None = None, compute_weight: float = 0.05,
                 success_bonus: float = 1.0, system2_cost: float | None = None, asynchronous: bool = False,
                 device: str = "auto", render_mode: str | None = None) -> None:
        robot_task(task)
        asynchronous = require_bool("asynchronous", asynchronous)
        policy = zoo_path(DEFAULT_POLICIES.get(task) if policy is None else policy)
        if policy is None:
            raise ValueError(f"policy must be a dual-system checkpoint path (make one with `adaptstep train-robot "
                             f"dual-system`), zoo:NAME or a DualSystemPolicy; the zoo ships a default for "
                             f"{sorted(DEFAULT_POLICIES)} only, not {task!r}")
        if isinstance(policy, (str, Path)):
            policy = load_dual_system(policy, device=device)
        if not is_dual_system(policy):
            raise ValueError(f"policy must be a dual-system policy (with system2 and system1), got "
                             f"{type(policy).__name__}")
        for name, value in (("compute_weight", compute_weight), ("success_bonus", success_bonus)):
            if not (np.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if steps_choices is not None:
            steps_choices = list(steps_choices)
            if not steps_choices or not all(isinstance(s, int) and s >= 1 for s in steps_choices):
                raise ValueError(f"steps_choices must be a non-empty list of ints >= 1, got {steps_choices!r}")
        if render_mode is not None:
            raise ValueError(f"render_mode must be None (this env does not render), got {render_mode!r}")
        self.policy, self.task, self.steps_choices = policy, task, steps_choices
        self.compute_weight, self.success_bonus = float(compute_weight), float(success_bonus)
        self.system2_cost = measure_system2_cost(policy) if system2_cost is None else float(system2_cost)
        self.execution = PolicyExecution(policy, make_robot_env(task, image_size=policy.config.image_size),
                                         action_steps, system2_cost=self.system2_cost,
                                         asynchronous=asynchronous)
        self.calls_per_episode = -(-robot_task(task).episode_steps // self.execution.action_steps)
        size = len(self.features) + policy.config.proprio_dim
        self.observation_space = spaces.Box(-np.inf, np.inf, (size,), np.float32)
        self.action_space = (spaces.Discrete(2) if steps_choices is None
                             else spaces.MultiDiscrete([2, len(steps_choices)]))
        self._started = False  # step needs a reset first

    def _observation(self) -> np.ndarray:
        run = self.execution
        newest = run.frames[-1].astype(np.float32)
        since_refresh = float(np.mean(np.abs(newest - run.refresh_frame.astype(np.float32)))) / 255
        since_last = float(np.mean(np.abs(newest - run.frames[-2].astype(np.float32)))) / 255
        call_frames = np.stack(list(run.frames)[-(run.action_steps + 1):]).astype(np.float32)
        largest_step = float(np.abs(np.diff(call_frames, axis=0)).mean(axis=(1, 2, 3)).max()) / 255
        target_weight = target_colour_weight(call_frames)
        largest_target_step = float(np.abs(np.diff(target_weight, axis=0)).mean(axis=(1, 2)).max())
        values = {"progress": run.calls / self.calls_per_episode,
                  "calls_since_refresh": run.calls_since_refresh / self.calls_per_episode,
                  "tokens_age": run.tokens_age / self.calls_per_episode, "change_since_refresh": since_refresh,
                  "change_since_last": since_last, "largest_step_change": largest_step,
                  "largest_step_target_change": largest_target_step,
                  "last_refresh": self._last_refresh}
        return np.concatenate([[values[name] for name in self.features], run.proprio[-1]]).astype(np.float32)

    def _info(self) -> dict[str, Any]:
        run = self.execution
        return {"cost": run.compute, "success": float(run.success and not run.failure),
                "final_distance": run.distance, "best_distance": run.best_distance,
                "system2_calls": run.system2_calls, "calls": run.calls}

    def baseline_action(self, **parameters: Any) -> Any:
        """The action of a hand-made refresh rule.

        Args:
            **parameters (Any): ``refresh`` (True or False) and, with ``steps_choices``, ``steps`` (one of them).

        Raises:
            ValueError: If a parameter is missing or unknown, or ``steps`` is not one of ``steps_choices``.
        """
        check_parameters(self, parameters, ("refresh", "steps"), ("refresh",) if self.steps_choices is None
                         else ("refresh", "steps"))
        refresh = int(bool(parameters["refresh"]))
        if self.steps_choices is None:
            if parameters.get("steps") is not None:
                raise ValueError(f"steps needs an env made with steps_choices, got steps={parameters['steps']!r}")
            return refresh
        if parameters["steps"] not in self.steps_choices:
            raise ValueError(f"steps must be one of steps_choices {self.steps_choices}, got {parameters['steps']!r}")
        return np.array([refresh, self.steps_choices.index(parameters["steps"])])

    def timings(self) -> dict[str, float]:
        """The episode's policy seconds: System 1, System 2 (wherever it ran) and the control loop's total."""
        summary = self.execution.summary()
        return {"policy_seconds": summary.policy_seconds, "system1_seconds": summary.system1_seconds,
                "system2_seconds": summary.system2_seconds}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode of the task from ``seed`` (or one drawn from the env's generator)."""
        super().reset(seed=seed)
        self._started = True
        self.execution.reset(int(self.np_random.integers(2**31)) if seed is None else seed)
        self._last_refresh = 0.0
        return self._observation(), self._info()

    def step(self, action):
        """Make one policy call, refreshing System 2 or not as ``action`` says.

        Raises:
            RuntimeError: If ``reset`` was not called first.
            ValueError: If ``action`` is not in the action space.
        """
        if not self._started:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(f"action must lie in {self.action_space}, got {action!r}")
        refresh, steps = (int(action), None) if self.steps_choices is None else (
            int(action[0]), self.steps_choices[int(action[1])])
        run = self.execution
        compute_before = run.compute
        progress, forced = run.advance(refresh=bool(refresh), steps=steps)
        self._last_refresh = float(refresh or forced)
        reward = progress - self.compute_weight * (run.compute - compute_before) / (1 + self.system2_cost)
        if run.done and run.success and not run.failure:
            reward += self.success_bonus
        info = self._info()
        if run.failure:
            reward, info["failure"] = FAILURE_PENALTY, run.failure
        terminated = bool(run.failure)
        truncated = run.done and not terminated
        return self._observation(), float(reward), terminated, truncated, info

    def close(self) -> None:
        """Stop the policy's runner and close the task env."""
        self.execution.close()
        self.execution.env.close()
