"""Fixed timestep schedules as controllers of ``adaptstep/DiffusionSampler-v0`` (the sampler family's baselines).

- ``schedule:logsnr_uniform,solver=dpmpp2m`` steps through the named hand schedule (time_uniform, time_quadratic,
  logsnr_uniform, edm) with a multistep solver: ``ddim``, ``dpmpp2m``, ``dpmpp3m`` (DPM-Solver++) or
  ``unipc{1,2,3}-{bh1,bh2}`` (UniPC with its corrector). Options: ``lower_order_final=always|below15|below10|never``
  (the final-order rule; default the env's, "always") and ``third_order=exact|dpmsolver`` (the 3M coefficient
  variant; default the env's, "exact"). Orders warm up 1, 2, … and follow the rule (``multistep_orders``).
- ``search:evolution,solver=dpmpp3m`` / ``search:dp,solver=dpmpp2m`` step through a schedule searched for the env's
  model, NFE, batch size and reference steps (``adaptstep.diffusion.search``, once per process), with the final
  orders the search used (DPM-Solver's code: lowered below 10 NFE), which its env then follows.
- ``diffusers:unipc,order=3,spacing=karras,solver_type=bh1`` / ``diffusers:dpmsolver++,order=3,spacing=lu_lambdas``
  step through the timesteps and orders that diffusers' scheduler (``UniPCMultistepScheduler`` /
  ``DPMSolverMultistepScheduler``) sets for the env's NFE on the model's discrete betas
  (``diffusers_interop.diffusers_plan``: ``spacing`` one of linspace, leading, trailing, karras, exponential,
  lu_lambdas, beta; ``lower_order_final`` and ``euler_at_final`` as diffusers'), with the env's own solvers, which
  follow diffusers' updates to float32 rounding (tested): UniPC of ``solver_type``, or DPM-Solver++ with
  DPM-Solver's 3M coefficients (``third_order="dpmsolver"``, diffusers' midpoint 2M). The env runs with
  ``choose_order=True`` so every step takes diffusers' order; cost = the env's NFE.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from adaptstep.diffusion.diffusers_interop import CONTROLLER_KINDS, diffusers_plan
from adaptstep.diffusion.env import DiffusionSamplerEnv
from adaptstep.diffusion.search import check_search, searched_schedule
from adaptstep.nn.solvers import FINAL_ORDER_RULES, MULTISTEP_SOLVERS, UNIPC_SOLVERS, multistep_orders, solver_order
from adaptstep.nn.timesteps import TIMESTEPS, make_timesteps

THIRD_ORDERS = ("exact", "dpmsolver")


def process_solver(solver: str) -> str:
    """The env's ``solver`` kwarg for a solver name: "dpmpp" for ddim/dpmpp2m/dpmpp3m, "unipc-bh1"/"unipc-bh2"."""
    solver_order(solver)  # validates the name
    return "dpmpp" if solver in MULTISTEP_SOLVERS else f"unipc-{UNIPC_SOLVERS[solver][1]}"


class _FixedSchedule(ABC):
    """Follow fixed times and orders of ``nfe`` steps from t_max to t_min, whatever the observation."""

    def __init__(self, name: str, solver: str, env_overrides: Mapping[str, Any] | None,
                 settings: Mapping[str, Any] | None = None) -> None:
        if solver not in MULTISTEP_SOLVERS and solver not in UNIPC_SOLVERS:
            raise ValueError(f"solver must be one of {sorted(MULTISTEP_SOLVERS) + sorted(UNIPC_SOLVERS)}, "
                             f"got {solver!r}")
        self.name, self.solver = name, solver
        self.env_overrides = {"order": solver_order(solver), "solver": process_solver(solver), **dict(settings or {}),
                              **dict(env_overrides or {})}

    @abstractmethod
    def _plan(self, env: gym.Env) -> tuple[list[float], list[int]]:
        """The times (nfe + 1) and orders (nfe) for the unwrapped ``env``."""

    def reset(self, env: gym.Env, seed: int | None = None) -> None:
        self._env = env.unwrapped
        if not isinstance(self._env, DiffusionSamplerEnv):
            raise ValueError(f"controller {self.name!r} needs adaptstep/DiffusionSampler-v0, got {self._env}")
        order, solver = solver_order(self.solver), process_solver(self.solver)
        if not self._env.choose_order and self._env.order != order:
            raise ValueError(f"controller {self.name!r} needs an env with order={order} or choose_order=True "
                             f"(the harness applies its env_overrides), got order={self._env.order}")
        if self._env.solver != solver:
            raise ValueError(f"controller {self.name!r} needs an env with solver={solver!r} (the harness applies its "
                             f"env_overrides), got solver={self._env.solver!r}")
        self._times, self._orders = self._plan(self._env)
        self._step = 0

    def act(self, observation: np.ndarray) -> np.ndarray:
        action = self._env.baseline_action(t_next=self._times[self._step + 1], order=self._orders[self._step])
        self._step += 1
        return action


def _rule_settings(lower_order_final: str | None, third_order: str | None) -> dict[str, Any]:
    if lower_order_final is not None and lower_order_final not in FINAL_ORDER_RULES:
        raise ValueError(f"lower_order_final must be one of {list(FINAL_ORDER_RULES)}, got {lower_order_final!r}")
    if third_order is not None and third_order not in THIRD_ORDERS:
        raise ValueError(f"third_order must be one of {THIRD_ORDERS}, got {third_order!r}")
    return {key: value for key, value in (("lower_order_final", lower_order_final), ("third_order", third_order))
            if value is not None}


class TimestepSchedule(_FixedSchedule):
    """A hand schedule (``TIMESTEPS``) of ``nfe`` steps with the env's final-order rule."""

    def __init__(self, name: str, schedule: str, solver: str = "dpmpp2m",
                 env_overrides: Mapping[str, Any] | None = None, lower_order_final: str | None = None,
                 third_order: str | None = None):
        if schedule not in TIMESTEPS:
            raise ValueError(f"name must be one of {sorted(TIMESTEPS)}, got {schedule!r}")
        super().__init__(name, solver, env_overrides, _rule_settings(lower_order_final, third_order))
        self.schedule = schedule

    def _plan(self, env: gym.Env) -> tuple[list[float], list[int]]:
        times = make_timesteps(self.schedule, env.process.schedule, env.nfe).tolist()
        return times, multistep_orders(solver_order(self.solver), env.nfe, env.lower_order_final)


class SearchedSchedule(_FixedSchedule):
    """A schedule searched for the env's model, nfe, batch size, reference steps and third-order variant.

    The search runs at the first ``reset`` and is cached per process, unless the zoo ships its result
    (``stored_search``); its env follows the final-order rule the search used ("below10").

    Args:
        name: The controller's name.
        method: The search, ``"evolution"`` or ``"dp"``.
        solver: The solver's ``nn.solvers`` name.
        options: Settings for ``searched_schedule`` (e.g. ``generations``, ``batches``, ``seed``).
        env_overrides: The env kwargs the controller sets.
    """

    def __init__(self, name: str, method: str, solver: str = "dpmpp2m", options: Mapping[str, Any] | None = None,
                 env_overrides: Mapping[str, Any] | None = None):
        options = dict(options or {})
        check_search(method, solver, options)
        super().__init__(name, solver, env_overrides, {"lower_order_final": "below10"})
        self.method, self.options = method, options

    def search_arguments(self, env: gym.Env) -> dict[str, Any]:
        """The arguments of ``searched_schedule`` for the (unwrapped) ``env``."""
        return {"method": self.method, "model": env.model, "nfe": env.nfe, "solver": self.solver,
                "batch_size": env.batch_size, "reference_steps": env.reference_steps, "third_order": env.third_order,
                **self.options}

    def _plan(self, env: gym.Env) -> tuple[list[float], list[int]]:
        result = searched_schedule(**self.search_arguments(env))
        return list(result.times), list(result.orders)


class DiffusersSchedule(_FixedSchedule):
    """diffusers' timesteps and orders for the env's NFE (``diffusers_interop.diffusers_plan``).

    They run on the env's solver that matches diffusers' update (see the module docstring).

    Args:
        name: The controller's name.
        kind: The diffusers scheduler, one of ``CONTROLLER_KINDS``.
        options: The scheduler's settings (``order``, ``spacing``, ``solver_type``, ``lower_order_final`` and, but
            for unipc, ``euler_at_final``).
        env_overrides: The env kwargs the controller sets.

    Raises:
        ValueError: If ``kind`` or an option is unknown or out of range.
    """

    def __init__(self, name: str, kind: str, options: Mapping[str, Any], env_overrides: Mapping[str, Any] | None):
        if kind not in CONTROLLER_KINDS:
            raise ValueError(f"diffusers controller kind must be one of {CONTROLLER_KINDS}, got {kind!r}")
        options = dict(options)
        allowed = {"order", "spacing", "solver_type", "lower_order_final", *(("euler_at_final",) if kind != "unipc"
                                                                             else ())}
        unknown = sorted(set(options) - allowed)
        if unknown:
            raise ValueError(f"options of diffusers:{kind} must be among {sorted(allowed)}, got unknown {unknown}")
        order = options.get("order", 2)
        if order not in (1, 2, 3):
            raise ValueError(f"order must be 1, 2 or 3, got {order!r}")
        variant = options.get("solver_type", "bh2")
        solver = {1: "ddim", 2: "dpmpp2m", 3: "dpmpp3m"}[order] if kind == "dpmsolver++" else f"unipc{order}-{variant}"
        if kind == "unipc" and solver not in UNIPC_SOLVERS:
            raise ValueError(f"solver_type must be 'bh1' or 'bh2' for unipc, got {variant!r}")
        settings = {"choose_order": True, **({"third_order": "dpmsolver"} if kind == "dpmsolver++" else {})}
        super().__init__(name, solver, env_overrides, settings)
        self.kind, self.options = kind, options

    def _plan(self, env: gym.Env) -> tuple[list[float], list[int]]:
        if not env.choose_order:
            raise ValueError(f"controller {self.name!r} needs an env with choose_order=True (its env_overrides)")
        if self.kind == "dpmsolver++" and env.third_order != "dpmsolver":
            raise ValueError(f"controller {self.name!r} needs third_order='dpmsolver' (diffusers' 3M update)")
        return diffusers_plan(self.kind, env.nfe, env.process.schedule, **self.options)


def schedule(name: str, env_overrides: Mapping[str, Any], value: str = "", solver: str = "dpmpp2m",
             lower_order_final: str | None = None, third_order: str | None = None) -> TimestepSchedule:
    """A hand schedule (``schedule:logsnr_uniform,solver=unipc3-bh2,lower_order_final=below10``).

    Args:
        name: The controller's name.
        env_overrides: The env kwargs the controller sets.
        value: The timesteps' name (a ``TIMESTEPS`` key).
        solver: The solver's ``nn.solvers`` name.
        lower_order_final: The final-order rule; None: the env's.
        third_order: The third-order update; None: the env's.
    """
    return TimestepSchedule(name, value, solver, env_overrides, lower_order_final, third_order)


def search(name: str, env_overrides: Mapping[str, Any], value: str = "", solver: str = "dpmpp2m",
           **options: Any) -> SearchedSchedule:
    """A schedule searched for the env (``search:evolution,solver=dpmpp3m``, ``search:dp,coeff=1.0``).

    Args:
        name: The controller's name.
        env_overrides: The env kwargs the controller sets.
        value: The search method, ``"evolution"`` or ``"dp"``.
        solver: The solver's ``nn.solvers`` name.
        **options: Settings for ``searched_schedule``.
    """
    return SearchedSchedule(name, value, solver, options, env_overrides)


def diffusers(name: str, env_overrides: Mapping[str, Any], value: str = "", **options: Any) -> DiffusersSchedule:
    """diffusers' schedule and orders (``diffusers:unipc,order=3,spacing=karras``).

    Args:
        name: The controller's name.
        env_overrides: The env kwargs the controller sets.
        value: The diffusers scheduler, one of ``CONTROLLER_KINDS``.
        **options: The scheduler's settings (see ``DiffusersSchedule``).
    """
    return DiffusersSchedule(name, value, options, env_overrides)
