"""The hand-made controllers that fit every env: ``fixed`` and ``random``.

``fixed`` applies one fixed value of the env's step parameter (``fixed:eta=0.01``), ``random`` uniformly random
actions.

A baseline spec ``NAME:key=value,...`` resolves through ``BASELINES[NAME](name=spec, env_overrides=..., **kwargs)``
or, for the families' own baselines (``ias15``, ``schedule``, ``budget``, ...), through the family registry
(``adaptstep.core.registry``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np


class FixedParameter:
    """Use one value of the env's time-step parameter at every step (e.g. ``fixed:eta=0.01``).

    The env translates the value into its own action encoding through ``baseline_action``.

    Args:
        name: The controller's name in the harness table (its spec).
        parameter: The env's parameter name (a keyword of its ``baseline_action``), e.g. ``"eta"``.
        value: The parameter's value, in the env's own unit.
        env_overrides: Env kwargs for this controller's episodes only; None for none.
    """

    def __init__(self, name: str, parameter: str, value: float, env_overrides: Mapping[str, Any] | None = None):
        self.name = name
        self.parameter = parameter
        self.value = float(value)
        self.env_overrides = dict(env_overrides or {})
        self._action: Any = None

    def reset(self, env: gym.Env, seed: int | None = None) -> None:
        """Translate the value into the env's action."""
        self._action = env.unwrapped.baseline_action(**{self.parameter: self.value})

    def act(self, observation: np.ndarray) -> Any:
        """The fixed action."""
        return self._action


class RandomAction:
    """Uniformly random actions from the env's action space, seeded per episode (a sanity baseline).

    Args:
        name: The controller's name in the harness table.
        env_overrides: Env kwargs for this controller's episodes only; None for none.
    """

    def __init__(self, name: str = "random", env_overrides: Mapping[str, Any] | None = None):
        self.name = name
        self.env_overrides = dict(env_overrides or {})
        self._space: gym.Space | None = None

    def reset(self, env: gym.Env, seed: int | None = None) -> None:
        """Seed the env's action space with the episode's seed."""
        self._space = env.action_space
        self._space.seed(seed)

    def act(self, observation: np.ndarray) -> Any:
        """A uniformly random action."""
        return self._space.sample()


def _fixed(name: str, env_overrides: Mapping[str, Any], **parameters: float) -> FixedParameter:
    if len(parameters) != 1 or "value" in parameters:
        raise ValueError(f"controller 'fixed' takes exactly one PARAM=VALUE (e.g. fixed:eta=0.01), got {parameters}")
    ((parameter, value),) = parameters.items()
    return FixedParameter(name, parameter, value, env_overrides)


def _random(name: str, env_overrides: Mapping[str, Any], **kwargs: Any) -> RandomAction:
    if kwargs:
        raise ValueError(f"controller 'random' takes no arguments, got {kwargs}")
    return RandomAction(name, env_overrides)


BaselineFactory = Callable[..., Any]
BASELINES: dict[str, BaselineFactory] = {"fixed": _fixed, "random": _random}  # the families add theirs
