"""The hand-made refresh schedules of ``adaptstep/DualSystem-v0`` as controllers: ``refresh:every=K`` refreshes
System 2 at the first call of an episode and then every K calls (Video2Act's public code uses K = 8);
``refresh:every=K,change=C`` also refreshes as soon as the scene changed: when the largest one-step mean absolute
pixel change of the last call's frames (in [0, 1]) exceeds C, as a target's jump shows (event-triggered refresh)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np


class PeriodicRefresh:
    """Refresh System 2 every ``every`` policy calls, reuse its features in between; with ``change`` given, refresh
    also at a call whose observed largest one-step pixel change exceeds it (the period then counts from the last
    refresh). With ``steps`` given, pick the action head's solver steps too: the env must have been made with
    ``steps_choices`` holding it."""

    def __init__(self, name: str, every: int, steps: int | None = None, change: float | None = None,
                 env_overrides: Mapping[str, Any] | None = None) -> None:
        if not (float(every).is_integer() and every >= 1):
            raise ValueError(f"controller {name!r}: every must be an integer >= 1, got {every!r}")
        if change is not None and not (np.isfinite(change) and 0 < change < 1):
            raise ValueError(f"controller {name!r}: change must be a pixel change in (0, 1), got {change!r}")
        self.name, self.every, self.steps, self.change = name, int(every), steps, change
        self.env_overrides = dict(env_overrides or {})

    def reset(self, env: gym.Env, seed: int | None = None) -> None:
        self._since_refresh, choices = None, getattr(env.unwrapped, "steps_choices", None)
        self._choice = None
        if self.steps is not None:
            if not choices or int(self.steps) not in choices:
                raise ValueError(f"controller {self.name!r}: steps={self.steps} must be one of the env's "
                                 f"steps_choices, got {choices}")
            self._choice = choices.index(int(self.steps))
        elif choices:
            raise ValueError(f"controller {self.name!r} needs steps=K for an env with steps_choices {choices}")
        self._change_index = None
        if self.change is not None:
            features = getattr(env.unwrapped, "features", ())
            if "largest_step_change" not in features:
                raise ValueError(f"controller {self.name!r}: change= needs an env that observes "
                                 f"largest_step_change (adaptstep/DualSystem-v0), got {env.unwrapped}")
            self._change_index = features.index("largest_step_change")

    def act(self, observation: np.ndarray) -> Any:
        changed = self._change_index is not None and observation[self._change_index] > self.change
        refresh = int(self._since_refresh is None or self._since_refresh + 1 >= self.every or changed)
        self._since_refresh = 0 if refresh else self._since_refresh + 1
        return refresh if self._choice is None else np.array([refresh, self._choice])
