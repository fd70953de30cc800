"""The three-body family's baseline specs.

``ias15:epsilon=1e-9``, ``aarseth:eta=0.01``, the whole-episode runs ``whole:ias15,epsilon=1e-5`` and the lookahead
``oracle:mu=1e-10``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from adaptstep.agents.baselines import FixedParameter
from adaptstep.threebody.env import ThreeBodyEnv
from adaptstep.threebody.integrators import BACKENDS
from adaptstep.threebody.oracle import LookaheadOracle

BACKEND_ALIASES = {"ias15": "rebound-ias15", "bs": "rebound-bs", "aarseth": "hermite-aarseth"}


class WholeEpisode:
    """Integrate the whole episode in one call of the backend with one parameter value, as users run it.

    Its spec is ``whole:ias15,epsilon=1e-5``.

    At its first ``act`` it asks the env for ``baseline_action(whole_episode=True, ...)``: the env step that
    follows integrates from t = 0 to ``t_end`` in one ``evolve`` call, so the harness row (cost, energy error,
    wall time, failure) is that of the single call.

    Args:
        name: The controller's name in the harness table (its spec).
        parameter: The backend's parameter name (``eta``, ``epsilon``, ``dt``).
        value: The parameter's value.
        env_overrides: Env kwargs for this controller's episodes only.
    """

    def __init__(self, name: str, parameter: str, value: float, env_overrides: Mapping[str, Any]):
        self.name = name
        self.parameter = parameter
        self.value = float(value)
        self.env_overrides = dict(env_overrides)
        self._env: Any = None

    def reset(self, env: gym.Env, seed: int | None = None) -> None:
        """Check that the env is ``adaptstep/ThreeBody-v0``."""
        self._env = env.unwrapped
        if not isinstance(self._env, ThreeBodyEnv):
            raise ValueError(f"controller {self.name!r} needs adaptstep/ThreeBody-v0, got {self._env}")

    def act(self, observation: np.ndarray) -> Any:
        """The action that integrates the rest of the episode in one call."""
        return self._env.baseline_action(whole_episode=True, **{self.parameter: self.value})


def ias15(name: str, env_overrides: Mapping[str, Any], epsilon: float = 1e-9) -> FixedParameter:
    """REBOUND's IAS15 with a fixed ε: the error-controlled reference integrator of the three-body env."""
    return FixedParameter(name, "epsilon", epsilon, {"backend": "rebound-ias15", **env_overrides})


def aarseth(name: str, env_overrides: Mapping[str, Any], eta: float = 0.01) -> FixedParameter:
    """Hermite with Aarseth's criterion at a fixed η in every interval (backend ``hermite-aarseth``)."""
    return FixedParameter(name, "eta", eta, {"backend": "hermite-aarseth", **env_overrides})


def whole(name: str, env_overrides: Mapping[str, Any], value: str, **parameters: float) -> WholeEpisode:
    """``whole:BACKEND,PARAM=VALUE``: the whole episode in one backend call (``WholeEpisode``).

    Args:
        name: The spec, the controller's name.
        env_overrides: Env kwargs of the spec (after ``@``); its backend is set from ``value``.
        value: The backend: ``ias15``, ``bs``, ``hermite``, ``aarseth``, ``leapfrog`` or a full backend name.
        **parameters: Exactly one, the backend's parameter: ``epsilon`` (IAS15, BS), ``eta`` (Hermite), ``dt``
            (leapfrog), or ``param``.
    """
    backend = BACKEND_ALIASES.get(value, value)
    if backend not in BACKENDS:
        raise ValueError(f"controller 'whole' needs a backend in {sorted([*BACKEND_ALIASES, *BACKENDS])}, "
                         f"got {value!r}")
    parameter_name = BACKENDS[backend].parameter_name
    if len(parameters) != 1 or not set(parameters) <= {parameter_name, "param"}:
        raise ValueError(f"controller 'whole:{value}' takes exactly one {parameter_name}=VALUE, got {parameters}")
    ((parameter, parameter_value),) = parameters.items()
    return WholeEpisode(name, parameter, parameter_value, {**env_overrides, "backend": backend})


def oracle(name: str, env_overrides: Mapping[str, Any], mu: float, grid_size: int = 16) -> LookaheadOracle:
    """The per-interval lookahead oracle (``adaptstep.threebody.oracle``)."""
    return LookaheadOracle(name, mu, grid_size, env_overrides)
