"""Fixed timestep schedules as controllers of ``adaptstep/DiffusionSampler-v0`` (the sampler family's baselines).

``schedule:logsnr_uniform,solver=dpmpp2m`` steps through the named hand schedule (time_uniform,
time_quadratic, logsnr_uniform, edm); ``search:evolution,solver=dpmpp3m`` / ``search:dp,solver=dpmpp2m``
through a schedule searched for the env's model, NFE, batch size and reference steps (``adaptstep.diffusion.search``,
once per process). Both use DPM-Solver++ of the solver's order, warming up with lower orders and lowering the
final ones as DPM-Solver does (``multistep_orders``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from adaptstep.diffusion.env import DiffusionSamplerEnv
from adaptstep.diffusion.search import check_search, searched_schedule
from adaptstep.nn.solvers import MULTISTEP_SOLVERS, multistep_orders
from adaptstep.nn.timesteps import TIMESTEPS, make_timesteps


class _FixedSchedule(ABC):
    """Follow fixed times and orders of ``nfe`` steps from t_max to t_min, whatever the observation."""

    def __init__(self, name: str, solver: str, env_overrides: Mapping[str, Any] | None) -> None:
        if solver not in MULTISTEP_SOLVERS:
            raise ValueError(f"solver must be one of {sorted(MULTISTEP_SOLVERS)}, got {solver!r}")
        self.name, self.solver = name, solver
        self.env_overrides = {"order": MULTISTEP_SOLVERS[solver], **dict(env_overrides or {})}

    @abstractmethod
    def _plan(self, env: gym.Env) -> tuple[list[float], list[int]]:
        """The times (nfe + 1) and orders (nfe) for the unwrapped ``env``."""

    def reset(self, env: gym.Env, seed: int | None = None) -> None:
        self._env = env.unwrapped
        if not isinstance(self._env, DiffusionSamplerEnv):
            raise ValueError(f"controller {self.name!r} needs adaptstep/DiffusionSampler-v0, got {self._env}")
        order = MULTISTEP_SOLVERS[self.solver]
        if not self._env.choose_order and self._env.order != order:
            raise ValueError(f"controller {self.name!r} needs an env with order={order} or choose_order=True "
                             f"(the harness applies its env_overrides), got order={self._env.order}")
        self._times, self._orders = self._plan(self._env)
        self._step = 0

    def act(self, observation: np.ndarray) -> np.ndarray:
        action = self._env.baseline_action(t_next=self._times[self._step + 1], order=self._orders[self._step])
        self._step += 1
        return action


class TimestepSchedule(_FixedSchedule):
    """A hand schedule (``TIMESTEPS``) of ``nfe`` steps."""

    def __init__(self, name: str, schedule: str, solver: str = "dpmpp2m",
                 env_overrides: Mapping[str, Any] | None = None):
        if schedule not in TIMESTEPS:
            raise ValueError(f"name must be one of {sorted(TIMESTEPS)}, got {schedule!r}")
        super().__init__(name, solver, env_overrides)
        self.schedule = schedule

    def _plan(self, env: gym.Env) -> tuple[list[float], list[int]]:
        times = make_timesteps(self.schedule, env.process.schedule, env.nfe).tolist()
        return times, multistep_orders(MULTISTEP_SOLVERS[self.solver], env.nfe)


class SearchedSchedule(_FixedSchedule):
    """A schedule searched by ``method`` (``"evolution"`` or ``"dp"``) for the env's model, nfe, batch size,
    reference steps and third-order variant; ``options`` go to ``searched_schedule`` (e.g. ``generations``,
    ``batches``, ``seed``). The search runs at the first ``reset`` and is cached per process."""

    def __init__(self, name: str, method: str, solver: str = "dpmpp2m", options: Mapping[str, Any] | None = None,
                 env_overrides: Mapping[str, Any] | None = None):
        options = dict(options or {})
        check_search(method, solver, options)
        super().__init__(name, solver, env_overrides)
        self.method, self.options = method, options

    def _plan(self, env: gym.Env) -> tuple[list[float], list[int]]:
        settings = {"batch_size": env.batch_size, "reference_steps": env.reference_steps,
                    "third_order": env.third_order, **self.options}
        result = searched_schedule(self.method, env.model, env.nfe, self.solver, **settings)
        return list(result.times), list(result.orders)


def schedule(name: str, env_overrides: Mapping[str, Any], value: str = "", solver: str = "dpmpp2m") -> TimestepSchedule:
    """A hand schedule (``schedule:logsnr_uniform,solver=dpmpp2m``)."""
    return TimestepSchedule(name, value, solver, env_overrides)


def search(name: str, env_overrides: Mapping[str, Any], value: str = "", solver: str = "dpmpp2m",
           **options: Any) -> SearchedSchedule:
    """A schedule searched for the env (``search:evolution,solver=dpmpp3m``, ``search:dp,coeff=1.0``)."""
    return SearchedSchedule(name, value, solver, options, env_overrides)
