"""Running a chunk policy in a robot task, one policy call at a time, with System 2 refreshed on request.

One policy call predicts a chunk of ``pred_horizon`` actions from the last ``obs_horizon`` observations and executes
``action_steps`` of them from position ``obs_horizon − 1`` on (Chi et al. 2023's receding horizon). For a dual-system
policy (one with ``system2`` and ``system1``) a call first refreshes System 2, the slow video features, when asked
(or when none are cached yet), then runs System 1, the fast action head, on the cached tokens. Video2Act's public
code schedules System 2 the same way: its evaluation cache recomputes the video features once every
``cache_ratio`` = 8 policy calls and reuses them in between. Here the calls run one after the other, so the
measured policy compute (``system1_seconds + system2_seconds``) is what a refresh schedule saves.

Compute is counted in System-1 calls: a System-2 call costs ``system2_cost`` of them (measured by
``measure_system2_cost``); the plain Diffusion Policy's call counts as one.
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch


def _synchronize(policy: Any) -> None:
    parameter = next(iter(policy.parameters()), None)
    if parameter is not None and parameter.device.type == "cuda":
        torch.cuda.synchronize(parameter.device)


def _numpy(actions: Any) -> np.ndarray:
    return actions.detach().cpu().numpy() if isinstance(actions, torch.Tensor) else np.asarray(actions)


def is_dual_system(policy: Any) -> bool:
    return hasattr(policy, "system2") and hasattr(policy, "system1")


@dataclass
class EpisodeSummary:
    """One episode's outcome and compute (``compute`` in System-1 calls, seconds of policy compute only)."""

    seed: int
    success: bool
    final_distance: float
    steps: int
    calls: int
    system2_calls: int
    nfe: int
    compute: float
    system1_seconds: float
    system2_seconds: float
    failure: str

    @property
    def policy_seconds(self) -> float:
        return self.system1_seconds + self.system2_seconds

    @property
    def control_hz(self) -> float:
        """Policy calls per second of policy compute."""
        return self.calls / self.policy_seconds if self.policy_seconds > 0 else float("nan")


class PolicyExecution:
    """A chunk policy acting in ``env`` (``adaptstep.policies.task.make_robot_env``).

    ``sampling_steps`` and ``solver`` set the action diffusion's solver (default: the policy's own
    ``config.sampling_steps`` / ``config.solver`` if it has them, else 10 DDIM steps for Diffusion Policy and 5
    DPM-Solver++(2M) steps for a dual system's head). Sampling noise follows the episode's seed and the call index.
    """

    def __init__(self, policy: Any, env: Any, action_steps: int | None = None, sampling_steps: int | None = None,
                 solver: str | None = None, system2_cost: float = 1.0) -> None:
        config = policy.config
        self.policy, self.env, self.dual = policy, env, is_dual_system(policy)
        self.obs_horizon, self.pred_horizon = config.obs_horizon, config.pred_horizon
        self.action_steps = config.action_steps if action_steps is None else action_steps
        most = self.pred_horizon - self.obs_horizon + 1
        if not (isinstance(self.action_steps, int) and 1 <= self.action_steps <= most):
            raise ValueError(f"action_steps must be an int in [1, pred_horizon - obs_horizon + 1 = {most}], "
                             f"got {self.action_steps!r}")
        default_steps, default_solver = (5, "dpmpp2m") if self.dual else (10, "ddim")
        self.sampling_steps = sampling_steps or getattr(config, "sampling_steps", default_steps)
        self.solver = solver or getattr(config, "solver", default_solver)
        if not (np.isfinite(system2_cost) and system2_cost >= 0):
            raise ValueError(f"system2_cost must be a finite number >= 0, got {system2_cost!r}")
        self.system2_cost = float(system2_cost)
        self.history = policy.system2_frames if self.dual else self.obs_horizon  # frames System 2 sees
        self.seed = 0

    def reset(self, seed: int) -> None:
        observation, info = self.env.reset(seed=seed)
        self.seed, self.done, self.failure = seed, False, ""
        frames = max(self.history, self.obs_horizon)
        self.frames = deque([observation["image"]] * frames, maxlen=frames)
        self.proprio = deque([observation["proprio"]] * self.obs_horizon, maxlen=self.obs_horizon)
        self.tokens, self.refresh_frame = None, observation["image"]
        self.distance = self.initial_distance = float(info["distance"])
        self.success, self.steps, self.calls, self.system2_calls, self.calls_since_refresh = False, 0, 0, 0, 0
        self.nfe, self.compute, self.system1_seconds, self.system2_seconds = 0, 0.0, 0.0, 0.0

    def _stack(self, frames: int) -> tuple[np.ndarray, np.ndarray]:
        images = np.stack(list(self.frames)[-frames:])[None]
        return images, np.stack(list(self.proprio))[None]

    def _refresh(self) -> None:
        images, _ = self._stack(self.history)
        started = time.perf_counter()
        self.tokens = self.policy.system2(images)
        _synchronize(self.policy)
        self.system2_seconds += time.perf_counter() - started
        self.system2_calls, self.calls_since_refresh = self.system2_calls + 1, 0
        self.compute += self.system2_cost
        self.refresh_frame = self.frames[-1]

    def _predict(self, steps: int) -> tuple[np.ndarray, int]:
        seed = self.seed * 1000 + self.calls
        images, proprio = self._stack(self.obs_horizon)
        started = time.perf_counter()
        if self.dual:
            actions, nfe = self.policy.system1(self.tokens, proprio, steps=steps, solver=self.solver, seed=seed)
        else:
            actions, nfe = self.policy.predict(images, proprio, steps=steps, solver=self.solver, seed=seed)
        actions = _numpy(actions)
        _synchronize(self.policy)
        self.system1_seconds += time.perf_counter() - started
        return actions[0], nfe

    def call(self, refresh: bool = True, steps: int | None = None) -> tuple[float, bool]:
        """One policy call (refreshing System 2 first if ``refresh`` or nothing is cached) and its executed actions;
        returns (progress, forced): the fraction of the initial distance closed by these actions, and whether the
        refresh was forced. Ends the episode with ``failure`` on a non-finite action."""
        if self.done:
            raise RuntimeError("the episode is over; call reset()")
        forced = self.dual and self.tokens is None and not refresh
        if self.dual and (refresh or forced):
            self._refresh()
        chunk, nfe = self._predict(steps or self.sampling_steps)
        self.calls, self.calls_since_refresh, self.nfe = self.calls + 1, self.calls_since_refresh + 1, self.nfe + nfe
        self.compute += 1.0
        before = self.distance
        for action in chunk[self.obs_horizon - 1: self.obs_horizon - 1 + self.action_steps]:
            if not np.all(np.isfinite(action)):
                self.done, self.failure = True, "non-finite action"
                break
            observation, _, terminated, truncated, info = self.env.step(action.astype(np.float32))
            self.frames.append(observation["image"])
            self.proprio.append(observation["proprio"])
            self.steps, self.distance, self.success = self.steps + 1, float(info["distance"]), bool(info["success"])
            if terminated or truncated:
                self.done = True
                break
        return (before - self.distance) / max(self.initial_distance, 1e-9), forced

    def summary(self) -> EpisodeSummary:
        return EpisodeSummary(self.seed, self.success and not self.failure, self.distance, self.steps, self.calls,
                              self.system2_calls, self.nfe, self.compute, self.system1_seconds, self.system2_seconds,
                              self.failure)


def run_episode(execution: PolicyExecution, seed: int, refresh_every: int = 1) -> EpisodeSummary:
    """One episode refreshing System 2 every ``refresh_every`` calls (ignored for a plain Diffusion Policy)."""
    if not (isinstance(refresh_every, int) and refresh_every >= 1):
        raise ValueError(f"refresh_every must be an int >= 1, got {refresh_every!r}")
    execution.reset(seed)
    while not execution.done:
        execution.call(refresh=execution.calls % refresh_every == 0)
    return execution.summary()


def rollout(policy: Any, task: str = "reacher", seeds: range | list[int] = range(20), refresh_every: int = 1,
            image_size: int | None = None, **options: Any) -> list[EpisodeSummary]:
    """Episodes of ``policy`` in ``task`` on ``seeds``; ``options`` go to ``PolicyExecution``."""
    from adaptstep.policies.task import make_robot_env

    env = make_robot_env(task, image_size=image_size or policy.config.image_size)
    try:
        execution = PolicyExecution(policy, env, **options)
        return [run_episode(execution, int(seed), refresh_every) for seed in seeds]
    finally:
        env.close()


def measure_system2_cost(policy: Any, repeats: int = 5) -> float:
    """Median System-2 call time over the median System-1 call time (default sampling settings) on a blank
    observation: the ``system2_cost`` of ``PolicyExecution``."""
    config = policy.config
    frames = np.zeros((1, policy.system2_frames, config.image_size, config.image_size, 3), np.uint8)
    proprio = np.zeros((1, config.obs_horizon, config.proprio_dim), np.float32)
    slow, fast = [], []
    for _ in range(repeats + 1):
        started = time.perf_counter()
        tokens = policy.system2(frames)
        _synchronize(policy)
        middle = time.perf_counter()
        policy.system1(tokens, proprio, steps=getattr(config, "sampling_steps", 5),
                       solver=getattr(config, "solver", "dpmpp2m"), seed=0)
        _synchronize(policy)
        slow.append(middle - started)
        fast.append(time.perf_counter() - middle)
    return float(np.median(slow[1:]) / np.median(fast[1:]))
