"""The fixed refresh schedules of ``adaptstep/DualSystem-v0`` as controllers: ``refresh:every=K`` refreshes System 2
at the first call of an episode and then every K calls (Video2Act's public code uses K = 8)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np


class PeriodicRefresh:
    """Refresh System 2 every ``every`` policy calls, reuse its features in between (with ``steps`` given, pick
    the action head's solver steps too: the env must have been made with ``steps_choices`` holding it)."""

    def __init__(self, name: str, every: int, steps: int | None = None,
                 env_overrides: Mapping[str, Any] | None = None) -> None:
        if not (float(every).is_integer() and every >= 1):
            raise ValueError(f"controller {name!r}: every must be an integer >= 1, got {every!r}")
        self.name, self.every, self.steps = name, int(every), steps
        self.env_overrides = dict(env_overrides or {})

    def reset(self, env: gym.Env, seed: int | None = None) -> None:
        self._calls, choices = 0, getattr(env.unwrapped, "steps_choices", None)
        self._choice = None
        if self.steps is not None:
            if not choices or int(self.steps) not in choices:
                raise ValueError(f"controller {self.name!r}: steps={self.steps} must be one of the env's "
                                 f"steps_choices, got {choices}")
            self._choice = choices.index(int(self.steps))
        elif choices:
            raise ValueError(f"controller {self.name!r} needs steps=K for an env with steps_choices {choices}")

    def act(self, observation: np.ndarray) -> Any:
        refresh = int(self._calls % self.every == 0)
        self._calls += 1
        return refresh if self._choice is None else np.array([refresh, self._choice])
