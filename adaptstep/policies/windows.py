"""Training windows over demonstrations, as Diffusion Policy's ``SequenceSampler`` cuts them.

For every step i of an episode [start, end) a window holds the ``obs_horizon`` observations i − T_o + 1 … i and the
``pred_horizon`` actions i − T_o + 1 … i − T_o + T_p; indices before the episode's start repeat its first step and
indices past its end repeat its last step (Chi et al. 2023 pad the same way). At run time the policy executes the
actions from position T_o − 1 on, the first one at step i.
"""

from __future__ import annotations

import numpy as np


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
