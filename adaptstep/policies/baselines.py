"""The hand-made refresh schedules of ``adaptstep/DualSystem-v0`` as controllers.

``refresh:every=K`` refreshes System 2 at the first call of an episode and then every K calls (Video2Act's public
code uses K = 8); ``refresh:every=K,change=C`` also refreshes as soon as the scene changed: when the largest one-step
mean absolute pixel change of the last call's frames (in [0, 1]) exceeds C, as a target's jump shows, and as a fast
arm does too (event-triggered refresh); ``refresh:every=K,target_change=C`` watches the one-step change of the
target's colour weight instead, which the arm hardly moves.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np


TRIGGERS = {"change": "largest_step_change", "target_change": "largest_step_target_change"}  # option: observed


class PeriodicRefresh:
    """Refresh System 2 every ``every`` policy calls and reuse its features in between.

    With ``change`` (or ``target_change``) given, refresh also at a call whose observed largest one-step pixel change
    (of the target's colour weight) exceeds it; the period then counts from the last refresh.

    Args:
        name: The controller's name, for errors.
        every: The refresh period in policy calls (an integer >= 1).
        steps: The action head's solver steps; the env must have been made with ``steps_choices`` holding it. None
            for the head's own steps.
        change: The largest one-step mean absolute pixel change, in (0, 1), that triggers a refresh; None for none.
        env_overrides: Env kwargs the controller needs.
        target_change: As ``change``, for the one-step change of the target's colour weight.

    Raises:
        ValueError: If ``every`` is not an integer >= 1 or a threshold is not in (0, 1).
    """

    def __init__(self, name: str, every: int, steps: int | None = None, change: float | None = None,
                 env_overrides: Mapping[str, Any] | None = None, target_change: float | None = None) -> None:
        if not (float(every).is_integer() and every >= 1):
            raise ValueError(f"controller {name!r}: every must be an integer >= 1, got {every!r}")
        self.thresholds = {option: value for option, value in (("change", change), ("target_change", target_change))
                           if value is not None}
        for option, value in self.thresholds.items():
            if not (np.isfinite(value) and 0 < value < 1):
                raise ValueError(f"controller {name!r}: {option} must be a pixel change in (0, 1), got {value!r}")
        self.name, self.every, self.steps = name, int(every), steps
        self.env_overrides = dict(env_overrides or {})

    def reset(self, env: gym.Env, seed: int | None = None) -> None:
        """Start an episode on ``env``, checking that it offers ``steps`` and observes the changes watched.

        Raises:
            ValueError: If ``steps`` is not one of the env's ``steps_choices`` (or is missing where it has some), or
                the env does not observe a change this controller watches.
        """
        self._env, self._since_refresh = env.unwrapped, None
        choices = getattr(self._env, "steps_choices", None)
        if self.steps is not None and (not choices or int(self.steps) not in choices):
            raise ValueError(f"controller {self.name!r}: steps={self.steps} must be one of the env's "
                             f"steps_choices, got {choices}")
        if self.steps is None and choices:
            raise ValueError(f"controller {self.name!r} needs steps=K for an env with steps_choices {choices}")
        features = getattr(self._env, "features", ())  # the names of the observation's leading entries
        self._triggers = []  # (observation index, threshold)
        for option, value in self.thresholds.items():
            if TRIGGERS[option] not in features:
                raise ValueError(f"controller {self.name!r}: {option}= needs an env that observes "
                                 f"{TRIGGERS[option]} (adaptstep/DualSystem-v0), got {self._env}")
            self._triggers.append((features.index(TRIGGERS[option]), value))

    def act(self, observation: np.ndarray) -> Any:
        """The env's action: refresh at the period's end or on a watched change above its threshold."""
        changed = any(observation[index] > threshold for index, threshold in self._triggers)
        refresh = int(self._since_refresh is None or self._since_refresh + 1 >= self.every or changed)
        self._since_refresh = 0 if refresh else self._since_refresh + 1
        return self._env.baseline_action(refresh=bool(refresh), steps=None if self.steps is None else int(self.steps))


def refresh(name: str, env_overrides: Mapping[str, Any], every: int = 1, steps: int | None = None,
            change: float | None = None, target_change: float | None = None) -> PeriodicRefresh:
    """A System-2 refresh period of ``adaptstep/DualSystem-v0`` (``refresh:every=4``).

    Optionally event-triggered by a pixel change (``refresh:every=8,change=0.007``) or a change of the target's
    colour (``refresh:every=20,target_change=0.007``) too; the arguments are ``PeriodicRefresh``'s.
    """
    return PeriodicRefresh(name, every, steps, change, env_overrides, target_change)
