"""Training windows over demonstrations, as Diffusion Policy's ``SequenceSampler`` cuts them.

For every step i of an episode [start, end) a window holds the ``obs_horizon`` observations i − T_o + 1 … i and the
``pred_horizon`` actions i − T_o + 1 … i − T_o + T_p; indices before the episode's start repeat its first step and
indices past its end repeat its last step (Chi et al. 2023 pad the same way). At run time the policy executes the
actions from position T_o − 1 on, the first one at step i.
"""

from __future__ import annotations

import numpy as np
import torch


def _check_horizon(value, name: str) -> int:
    if not (isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1):
        raise ValueError(f"{name} must be an int >= 1, got {value!r}")
    return int(value)


def episode_bounds(episode_ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(starts, ends) of the episodes whose exclusive ends are ``episode_ends``."""
    ends = np.asarray(episode_ends, dtype=np.int64)
    if ends.ndim != 1 or len(ends) == 0 or ends[0] < 1 or np.any(np.diff(ends) < 1):
        raise ValueError(f"episode_ends must be a non-empty, strictly increasing array of ends >= 1, got {ends}")
    return np.concatenate([[0], ends[:-1]]), ends


def window_indices(episode_ends: np.ndarray, obs_horizon: int, pred_horizon: int,
                   history: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(observation indices (M, history), action indices (M, pred_horizon)) of the M windows, one per step.

    ``history`` (default ``obs_horizon``) is how many past observations each window holds, ending at step i; a
    longer history than ``obs_horizon`` serves models that look at a frame sequence (the dual system's motion
    stream)."""
    obs_horizon, pred_horizon = _check_horizon(obs_horizon, "obs_horizon"), _check_horizon(pred_horizon, "pred_horizon")
    history = obs_horizon if history is None else _check_horizon(history, "history")
    observations, actions = [], []
    for start, end in zip(*episode_bounds(episode_ends)):
        steps = np.arange(start, end)[:, None]
        observations.append(np.clip(steps + np.arange(1 - history, 1), start, end - 1))
        actions.append(np.clip(steps + np.arange(1 - obs_horizon, 1 - obs_horizon + pred_horizon), start, end - 1))
    return np.concatenate(observations), np.concatenate(actions)


def scene_starts(episode_ends: np.ndarray, target_jumps: np.ndarray | None = None) -> np.ndarray:
    """Whether each of the N steps begins a scene, (N,) bool.

    A scene begins at an episode's first step and, with ``target_jumps`` (N,) (the jumps of the target each
    observation shows), at each step whose count differs from the step before. Within a scene every observation
    shows the target where the expert steers.
    """
    starts, ends = episode_bounds(episode_ends)
    first = np.zeros(int(ends[-1]), dtype=bool)
    first[starts] = True
    if target_jumps is not None:
        jumps = np.asarray(target_jumps)
        if jumps.shape != first.shape:
            raise ValueError(f"target_jumps must have shape (N={len(first)},), got {jumps.shape}")
        first[1:] |= jumps[1:] != jumps[:-1]
    return first


def reaction_starts(episode_ends: np.ndarray, target_jumps: np.ndarray | None = None,
                    expert_waits: np.ndarray | None = None) -> np.ndarray:
    """Where the expert begins to steer to the target its observation shows, (N,) bool.

    That is each scene's first step (``scene_starts``), but where it still waits there (``expert_waits`` (N,) bool:
    steering to the target from before a jump) the first step after its wait instead.
    """
    first = scene_starts(episode_ends, target_jumps)
    if expert_waits is not None:
        waits = np.asarray(expert_waits, dtype=bool)
        if waits.shape != first.shape:
            raise ValueError(f"expert_waits must have shape (N={len(first)},), got {waits.shape}")
        first &= ~waits
        first[1:] |= waits[:-1] & ~waits[1:]
    return first


def first_window_weights(episode_ends: np.ndarray, weight: float, target_jumps: np.ndarray | None = None,
                         expert_waits: np.ndarray | None = None) -> torch.Tensor:
    """Sampling weights (N,) float64 of the N windows of ``window_indices`` (window i is step i).

    ``weight`` for the first window of each reaction to a scene (``reaction_starts``), 0 where the expert waits
    (its actions ignore the target the window shows), 1 for the others.
    """
    weights = torch.ones(int(np.asarray(episode_ends)[-1]), dtype=torch.float64)
    weights[torch.as_tensor(reaction_starts(episode_ends, target_jumps, expert_waits))] = weight
    if expert_waits is not None:
        weights[torch.as_tensor(np.asarray(expert_waits, dtype=bool))] = 0.0
    return weights


def window_scene_starts(episode_ends: np.ndarray, target_jumps: np.ndarray | None = None) -> torch.Tensor:
    """The first step (N,) of each window's scene (``scene_starts``), for the N windows of ``window_indices``.

    Window i is step i; the window ``j`` steps before window i, as a cached System 2 call saw it, clipped to the
    scene that window i's actions belong to, is max(i − j, starts[i]).
    """
    first = scene_starts(episode_ends, target_jumps)
    return torch.as_tensor(np.maximum.accumulate(np.where(first, np.arange(len(first)), 0)))


def demo_tensors(demos) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(images uint8 (N, S, S, 3), proprio float32 (N, P), actions float32 (N, A)) of ``demos``.

    Args:
        demos (Demonstrations): Demonstrations, or anything with those fields.

    Raises:
        ValueError: Unless they share N.
    """
    images = torch.as_tensor(np.asarray(demos.images))
    proprio = torch.as_tensor(np.asarray(demos.proprio), dtype=torch.float32)
    actions = torch.as_tensor(np.asarray(demos.actions), dtype=torch.float32)
    if images.ndim != 4 or not len(images) == len(proprio) == len(actions):
        raise ValueError(f"demos.images (N, S, S, 3), demos.proprio (N, P) and demos.actions (N, A) must share N, "
                         f"got shapes {tuple(images.shape)}, {tuple(proprio.shape)}, {tuple(actions.shape)}")
    return images, proprio, actions


def training_windows(demos, obs_horizon: int, pred_horizon: int,
                     history: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``window_indices`` of ``demos.episode_ends`` as tensors.

    Args:
        demos (Demonstrations): The demonstrations.
        obs_horizon: T_o.
        pred_horizon: T_p.
        history: The past observations per window; None for ``obs_horizon``.

    Raises:
        ValueError: Unless the episodes end at the number of demonstrated actions.
    """
    observations, actions = (torch.as_tensor(index) for index in
                             window_indices(demos.episode_ends, obs_horizon, pred_horizon, history))
    if actions.max() >= len(demos.actions):
        raise ValueError(f"demos.episode_ends must end at len(demos.actions) = {len(demos.actions)}, got "
                         f"{int(np.asarray(demos.episode_ends)[-1])}")
    return observations, actions
