"""Hand-made timestep schedules as controllers of ``adaptstep/DiffusionSampler-v0``.

``schedule:logsnr_uniform,solver=dpmpp2m`` steps through the named schedule (time_uniform,
time_quadratic, logsnr_uniform, edm) with DPM-Solver++ of the solver's order, warming up with lower
orders and lowering the final ones as DPM-Solver does (``multistep_orders``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from adaptstep.diffusion.solvers import multistep_orders
from adaptstep.diffusion.timesteps import TIMESTEPS, make_timesteps

SOLVER_ORDERS = {"ddim": 1, "dpmpp2m": 2, "dpmpp3m": 3}


class TimestepSchedule:
    """Follow a fixed schedule of ``nfe`` steps from t_max to t_min, whatever the observation."""

    def __init__(self, name: str, schedule: str, solver: str = "dpmpp2m",
                 env_overrides: Mapping[str, Any] | None = None):
        if schedule not in TIMESTEPS:
            raise ValueError(f"name must be one of {sorted(TIMESTEPS)}, got {schedule!r}")
        if solver not in SOLVER_ORDERS:
            raise ValueError(f"solver must be one of {sorted(SOLVER_ORDERS)}, got {solver!r}")
        self.name, self.schedule, self.solver = name, schedule, solver
        self.env_overrides = {"order": SOLVER_ORDERS[solver], **dict(env_overrides or {})}

    def reset(self, env: gym.Env, seed: int | None = None) -> None:
        self._env = env.unwrapped
        if not hasattr(self._env, "action_for"):
            raise ValueError(f"controller {self.name!r} needs adaptstep/DiffusionSampler-v0, got {self._env}")
        order = SOLVER_ORDERS[self.solver]
        if not self._env.choose_order and self._env.order != order:
            raise ValueError(f"controller {self.name!r} needs an env with order={order} or choose_order=True "
                             f"(the harness applies its env_overrides), got order={self._env.order}")
        steps = self._env.nfe
        self._times = make_timesteps(self.schedule, self._env.process.schedule, steps).tolist()
        self._orders = multistep_orders(SOLVER_ORDERS[self.solver], steps)
        self._step = 0

    def act(self, observation: np.ndarray) -> np.ndarray:
        action = self._env.action_for(self._times[self._step + 1], self._orders[self._step])
        self._step += 1
        return action
