"""Hand-made controllers: a fixed time-step parameter, a random policy, and a registry of named baselines
(``fixed``, ``random``, ``ias15``, the three-body lookahead ``oracle`` of ``adaptstep.agents.oracle``, and
the diffusion sampler's hand ``schedule`` and searched ``search`` schedules of ``adaptstep.agents.schedules``, and
the budget-forcing env's quota rules ``budget`` of ``adaptstep.agents.budget``, and the dual-system env's refresh
schedules ``refresh`` of ``adaptstep.agents.refresh``).

A baseline spec ``NAME:key=value,...`` resolves through ``BASELINES[NAME](**kwargs)``. Process families
register their own names (e.g. ``ias15`` = fixed IAS15 ε on the REBOUND backend).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym
import numpy as np


class FixedParameter:
    """Use one value of the env's time-step parameter at every step (e.g. ``fixed:eta=0.01``).

    The env translates the value into its own action encoding through ``action_from_parameter``.
    """

    def __init__(self, name: str, parameter: str, value: float, env_overrides: Mapping[str, Any] | None = None):
        self.name = name
        self.parameter = parameter
        self.value = float(value)
        self.env_overrides = dict(env_overrides or {})
        self._action: Any = None

    def reset(self, env: gym.Env, seed: int | None = None) -> None:
        self._action = env.unwrapped.action_from_parameter(self.parameter, self.value)

    def act(self, observation: np.ndarray) -> Any:
        return self._action


class RandomAction:
    """Uniformly random actions from the env's action space, seeded per episode (a sanity baseline)."""

    def __init__(self, name: str = "random", env_overrides: Mapping[str, Any] | None = None):
        self.name = name
        self.env_overrides = dict(env_overrides or {})
        self._space: gym.Space | None = None

    def reset(self, env: gym.Env, seed: int | None = None) -> None:
        self._space = env.action_space
        self._space.seed(seed)

    def act(self, observation: np.ndarray) -> Any:
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


def _ias15(name: str, env_overrides: Mapping[str, Any], epsilon: float = 1e-9) -> FixedParameter:
    """REBOUND's IAS15 with a fixed ε: the error-controlled reference integrator of the three-body env."""
    return FixedParameter(name, "epsilon", epsilon, {"backend": "rebound-ias15", **env_overrides})


def _oracle(name: str, env_overrides: Mapping[str, Any], mu: float, grid_size: int = 16) -> Any:
    from adaptstep.agents.oracle import LookaheadOracle

    return LookaheadOracle(name, mu, grid_size, env_overrides)


def _schedule(name: str, env_overrides: Mapping[str, Any], value: str = "", solver: str = "dpmpp2m") -> Any:
    from adaptstep.agents.schedules import TimestepSchedule

    return TimestepSchedule(name, value, solver, env_overrides)


def _search(name: str, env_overrides: Mapping[str, Any], value: str = "", solver: str = "dpmpp2m",
            **options: Any) -> Any:
    """A schedule searched for the env (``search:evolution,solver=dpmpp3m``, ``search:dp,coeff=1.0``)."""
    from adaptstep.agents.schedules import SearchedSchedule

    return SearchedSchedule(name, value, solver, options, env_overrides)


def _budget(name: str, env_overrides: Mapping[str, Any], value: str = "", **options: Any) -> Any:
    """A hand-made quota rule of ``adaptstep/BudgetForcing-v0`` (``budget:rbf``, ``budget:svdd``, ``budget:linear``)."""
    from adaptstep.agents.budget import QuotaController

    return QuotaController(name, value, options, env_overrides)


def _refresh(name: str, env_overrides: Mapping[str, Any], every: int = 1, steps: int | None = None,
             change: float | None = None, target_change: float | None = None) -> Any:
    """A System-2 refresh period of ``adaptstep/DualSystem-v0`` (``refresh:every=4``), optionally event-triggered
    by a pixel change (``refresh:every=8,change=0.007``) or a change of the target's colour
    (``refresh:every=20,target_change=0.007``) too."""
    from adaptstep.agents.refresh import PeriodicRefresh

    return PeriodicRefresh(name, every, steps, change, env_overrides, target_change)


BaselineFactory = Callable[..., Any]
BASELINES: dict[str, BaselineFactory] = {"fixed": _fixed, "random": _random, "ias15": _ias15, "oracle": _oracle,
                                         "schedule": _schedule, "search": _search, "budget": _budget,
                                         "refresh": _refresh}


def register_baseline(name: str, factory: BaselineFactory) -> None:
    """Make ``name:...`` specs resolve to ``factory(name=spec, env_overrides=..., **kwargs)``."""
    BASELINES[name] = factory
