"""Running a chunk policy in a robot task, one policy call at a time, with System 2 refreshed on request.

One policy call predicts a chunk of ``pred_horizon`` actions from the last ``obs_horizon`` observations and executes
``action_steps`` of them from position ``obs_horizon − 1`` on (Chi et al. 2023's receding horizon). For a dual-system
policy (one with ``system2`` and ``system1``) a call first refreshes System 2, the slow video features, when asked
(or when none are cached yet), then runs System 1, the fast action head, on the cached tokens. Video2Act's public
code schedules System 2 the same way: its evaluation cache recomputes the video features once every
``cache_ratio`` = 8 policy calls and reuses them in between.

Two runners share this schedule. **Synchronous** (default): a refresh runs System 2 before System 1, so the
control loop's policy time is ``system1_seconds + system2_seconds``. **Asynchronous** (``asynchronous=True``): a
refresh hands System 2 the current frames on a worker thread (a CUDA stream of its own on a GPU) and System 1 goes on
with the tokens it has; the next refresh first swaps in that result, waiting for it if it is not done, then hands
off the next window. The tokens System 1 uses at call t of a period-k schedule thus come from the frames of call
k·(⌊t/k⌋ − 1), k to 2k − 1 calls old (the first call, with nothing cached, runs System 2 in line; the first period
and the second use its tokens). What the policy does is fixed by the schedule, not by thread timing, so a seed
gives the same episode every time; only the wall time varies. The control loop's policy time is
``system1_seconds`` plus the time it waited for System 2 (``blocked_seconds``): System 2 overlaps System 1 and the
simulation, as it would overlap a robot executing its actions.

Compute is counted in System-1 calls: a System-2 call costs ``system2_cost`` of them (measured by
``measure_system2_cost``); the plain Diffusion Policy's call counts as one.
"""

from __future__ import annotations

import time
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from adaptstep.policies.task import make_robot_env


def _device(policy: Any) -> torch.device:
    parameter = next(iter(policy.parameters()), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def _synchronize(policy: Any) -> None:
    device = _device(policy)
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _numpy(actions: Any) -> np.ndarray:
    return actions.detach().cpu().numpy() if isinstance(actions, torch.Tensor) else np.asarray(actions)


def is_dual_system(policy: Any) -> bool:
    """Whether ``policy`` is a dual system (has ``system2`` and ``system1``)."""
    return hasattr(policy, "system2") and hasattr(policy, "system1")


@dataclass
class EpisodeSummary:
    """One episode's outcome and compute.

    ``compute`` is in System-1 calls; the seconds are of policy compute only: ``system2_seconds`` is System 2's own
    time wherever it ran, ``blocked_seconds`` the part of it, or of waiting for it, that held up the control loop;
    the two are equal for the synchronous runner.
    """

    seed: int
    success: bool
    final_distance: float
    best_distance: float
    steps: int
    calls: int
    system2_calls: int
    nfe: int
    compute: float
    system1_seconds: float
    system2_seconds: float
    blocked_seconds: float
    failure: str

    @property
    def policy_seconds(self) -> float:
        """The control loop's wall time in the policy: System 1 plus waiting for System 2."""
        return self.system1_seconds + self.blocked_seconds

    @property
    def control_hz(self) -> float:
        """Policy calls per second of policy compute."""
        return self.calls / self.policy_seconds if self.policy_seconds > 0 else float("nan")


class PolicyExecution:
    """A chunk policy acting in ``env`` (``adaptstep.policies.task.make_robot_env``).

    Sampling noise follows the episode's seed and the call index. ``compute`` counts a call at ``sampling_steps`` as
    1 (one network evaluation per step with these solvers, so a call at s steps counts s / ``sampling_steps``) and a
    System-2 call as ``system2_cost``.

    Args:
        policy (DiffusionPolicy | DualSystemPolicy): The chunk policy.
        env (gymnasium.Env): The robot task's env.
        action_steps: The actions executed per call, in [1, pred_horizon − obs_horizon + 1]; None for the policy's.
        sampling_steps: The action diffusion's solver steps; None for the policy's ``config.sampling_steps`` if it
            has one, else 10 for Diffusion Policy and 5 for a dual system's head.
        solver: The action diffusion's solver; None for the policy's ``config.solver`` if it has one, else DDIM for
            Diffusion Policy and DPM-Solver++(2M) for a dual system's head.
        system2_cost: A System-2 call's compute in System-1 calls (>= 0).
        asynchronous: Run System 2 on a worker thread, pipelined as the module docstring says; ``close()`` ends the
            thread.

    Raises:
        ValueError: If ``action_steps`` or ``system2_cost`` is out of range.
    """

    def __init__(self, policy: Any, env: Any, action_steps: int | None = None, sampling_steps: int | None = None,
                 solver: str | None = None, system2_cost: float = 1.0, asynchronous: bool = False) -> None:
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
        if not isinstance(asynchronous, bool):
            raise ValueError(f"asynchronous must be True or False, got {asynchronous!r}")
        self.asynchronous = asynchronous and self.dual
        self._worker: ThreadPoolExecutor | None = None
        self._stream: torch.cuda.Stream | None = None  # the worker's CUDA stream, on a GPU
        self._pending: tuple[Future, np.ndarray, int] | None = None  # System 2 at work: result, newest frame, call
        self.history = policy.system2_frames if self.dual else self.obs_horizon  # frames System 2 sees
        self.seed = 0

    def reset(self, seed: int) -> None:
        """Start an episode of the env from ``seed``, dropping any System-2 call at work."""
        self._drop_pending()
        observation, info = self.env.reset(seed=seed)
        self.seed, self.done, self.failure = seed, False, ""
        frames = max(self.history, self.obs_horizon, self.action_steps + 1)  # a call's steps and the frame before
        self.frames = deque([observation["image"]] * frames, maxlen=frames)
        self.proprio = deque([observation["proprio"]] * self.obs_horizon, maxlen=self.obs_horizon)
        self.tokens, self.refresh_frame, self._tokens_call = None, observation["image"], 0
        self.distance = self.initial_distance = self.best_distance = float(info["distance"])
        self.success, self.steps, self.calls, self.system2_calls, self.calls_since_refresh = False, 0, 0, 0, 0
        self.nfe, self.compute, self.system1_seconds, self.system2_seconds = 0, 0.0, 0.0, 0.0
        self.blocked_seconds = 0.0

    def _stack(self, frames: int) -> tuple[np.ndarray, np.ndarray]:
        images = np.stack(list(self.frames)[-frames:])[None]
        return images, np.stack(list(self.proprio))[None]

    def _system2(self, images: np.ndarray) -> tuple[Any, float]:
        """System 2 on ``images`` and its own seconds; off the main thread on a GPU it runs on a CUDA stream of its
        own, and its tokens are marked as used by the default stream, where System 1 reads them."""
        device = _device(self.policy)
        started = time.perf_counter()
        if device.type == "cuda" and self.asynchronous:
            self._stream = self._stream or torch.cuda.Stream(device)
            with torch.cuda.stream(self._stream):
                tokens = self.policy.system2(images)
            self._stream.synchronize()
            tokens.record_stream(torch.cuda.default_stream(device))
        else:
            tokens = self.policy.system2(images)
            _synchronize(self.policy)
        return tokens, time.perf_counter() - started

    def _refresh(self) -> None:
        """Synchronous, or the first call of an episode: System 2 on the current frames, in line."""
        images, _ = self._stack(self.history)
        self.tokens, seconds = self._system2(images)
        self.system2_seconds, self.blocked_seconds = self.system2_seconds + seconds, self.blocked_seconds + seconds
        self._count_refresh()
        self.refresh_frame, self._tokens_call = self.frames[-1], self.calls

    def _refresh_async(self) -> None:
        """Swap in the result of the last hand-off (waiting for it if need be), then hand off the current frames."""
        if self._pending is not None:
            future, frame, call = self._pending
            started = time.perf_counter()
            self.tokens, seconds = future.result()
            self.blocked_seconds += time.perf_counter() - started
            self.system2_seconds += seconds
            self.refresh_frame, self._tokens_call, self._pending = frame, call, None
        if self._worker is None:
            self._worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="system2")
        images, _ = self._stack(self.history)
        self._pending = self._worker.submit(self._system2, images), self.frames[-1], self.calls
        self._count_refresh()

    @property
    def tokens_age(self) -> int:
        """Calls since the frames behind System 1's tokens were taken.

        The asynchronous runner's tokens are a refresh older than its last hand-off; for the synchronous one this
        equals ``calls_since_refresh``.
        """
        return self.calls - self._tokens_call

    def _count_refresh(self) -> None:
        self.system2_calls, self.calls_since_refresh = self.system2_calls + 1, 0
        self.compute += self.system2_cost

    def _drop_pending(self) -> None:
        """Let a hand-off the episode no longer needs finish (its time counts, its tokens are not used)."""
        if self._pending is not None:
            self.system2_seconds += self._pending[0].result()[1]
            self._pending = None

    def close(self) -> None:
        """End the asynchronous runner's worker thread (the env is the caller's to close)."""
        self._drop_pending()
        if self._worker is not None:
            self._worker.shutdown()
            self._worker = None

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

    def advance(self, refresh: bool = True, steps: int | None = None) -> tuple[float, bool]:
        """One policy call and its executed actions; a non-finite action ends the episode with ``failure``.

        Args:
            refresh: Refresh System 2 first (it is refreshed anyway when nothing is cached).
            steps: The action head's solver steps for this call; None for ``sampling_steps``.

        Returns:
            (progress, forced): the fraction of the initial distance closed by these actions, and whether the
            refresh was forced.
        """
        if self.done:
            raise RuntimeError("the episode is over; call reset()")
        forced = self.dual and self.tokens is None and not refresh
        if self.dual and self.tokens is None:
            self._refresh()
        elif self.dual and refresh and self.asynchronous:
            self._refresh_async()
        elif self.dual and refresh:
            self._refresh()
        steps = steps or self.sampling_steps
        chunk, nfe = self._predict(steps)
        self.calls, self.calls_since_refresh, self.nfe = self.calls + 1, self.calls_since_refresh + 1, self.nfe + nfe
        self.compute += steps / self.sampling_steps  # the network evaluations' share of a call at sampling_steps
        before = self.distance
        for action in chunk[self.obs_horizon - 1: self.obs_horizon - 1 + self.action_steps]:
            if not np.all(np.isfinite(action)):
                self.done, self.failure = True, "non-finite action"
                break
            observation, _, terminated, truncated, info = self.env.step(action.astype(np.float32))
            self.frames.append(observation["image"])
            self.proprio.append(observation["proprio"])
            self.steps, self.distance, self.success = self.steps + 1, float(info["distance"]), bool(info["success"])
            self.best_distance = min(self.best_distance, self.distance)
            if terminated or truncated:
                self.done = True
                break
        if self.done:
            self._drop_pending()
        return (before - self.distance) / max(self.initial_distance, 1e-9), forced

    @property
    def cost(self) -> float:
        """Policy compute so far, in System-1 calls at the policy's own solver steps."""
        return self.compute

    def quality(self) -> dict[str, float]:
        """Success (1 or 0), the distance now and the least distance so far."""
        return {"success": float(self.success and not self.failure), "final_distance": self.distance,
                "best_distance": self.best_distance}

    def summary(self) -> EpisodeSummary:
        """The episode's outcome and compute so far."""
        return EpisodeSummary(self.seed, self.success and not self.failure, self.distance, self.best_distance,
                              self.steps, self.calls, self.system2_calls, self.nfe, self.compute,
                              self.system1_seconds, self.system2_seconds, self.blocked_seconds, self.failure)


def run_policy_episode(execution: PolicyExecution, seed: int, refresh_every: int = 1) -> EpisodeSummary:
    """One episode refreshing System 2 every ``refresh_every`` calls (ignored for a plain Diffusion Policy).

    Args:
        execution: The policy in its env.
        seed: The episode's seed.
        refresh_every: The refresh period in calls (>= 1).

    Raises:
        ValueError: If ``refresh_every`` is not an int >= 1.
    """
    if not (isinstance(refresh_every, int) and refresh_every >= 1):
        raise ValueError(f"refresh_every must be an int >= 1, got {refresh_every!r}")
    execution.reset(seed)
    while not execution.done:
        execution.advance(refresh=execution.calls % refresh_every == 0)
    return execution.summary()


def rollout(policy: Any, task: str = "reacher", seeds: range | list[int] = range(20), refresh_every: int = 1,
            image_size: int | None = None, **options: Any) -> list[EpisodeSummary]:
    """Episodes of ``policy`` in ``task``, one per seed.

    Args:
        policy: A Diffusion Policy or dual system.
        task: The robot task.
        seeds: The episodes' seeds.
        refresh_every: The System-2 refresh period in calls.
        image_size: The camera image's side; None for the policy's.
        **options: ``PolicyExecution``'s keyword arguments.
    """
    env = make_robot_env(task, image_size=image_size or policy.config.image_size)
    try:
        execution = PolicyExecution(policy, env, **options)
        try:
            return [run_policy_episode(execution, int(seed), refresh_every) for seed in seeds]
        finally:
            execution.close()
    finally:
        env.close()


def measure_system2_cost(policy: Any, repeats: int = 5) -> float:
    """Median System-2 call time over the median System-1 call time: the ``system2_cost`` of ``PolicyExecution``.

    Both run on a blank observation, System 1 with the default sampling settings; a first warm-up call of each is
    not counted.

    Args:
        policy (DualSystemPolicy): The dual system.
        repeats: The timed calls of each.
    """
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
