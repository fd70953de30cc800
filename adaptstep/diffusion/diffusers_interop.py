"""Hugging Face diffusers schedulers that follow an adaptstep schedule, and a loop that drives them with an
adaptstep denoiser. diffusers is optional (``pip install adaptstep[diffusers]``) and imported only when used.

How diffusers' VP schedulers map timesteps to noise: with N = ``num_train_timesteps`` betas β_τ (float32),
ᾱ_τ = Π_{j≤τ}(1 − β_j) for τ = 0…N−1 and ``sigmas`` σ̃_τ = √((1 − ᾱ_τ)/ᾱ_τ), the EDM noise level, with
α = 1/√(1 + σ̃²) and σ = σ̃α. adaptstep's ``DiscreteVPSchedule`` puts τ at t = (τ + 1)/N with α_t² = ᾱ_τ
(``index_to_time``), so integer timesteps are the same noise levels on both sides.

Restrictions (diffusers 0.42):

- ``DPMSolverMultistepScheduler.set_timesteps`` has no ``sigmas=``: a schedule goes in as ``timesteps=``, cast
  to integers on the N-step training grid (so only a schedule exported from a ``DiscreteVPSchedule``, whose
  ``timesteps`` are rounded to that grid), and refused together with ``use_karras_sigmas``, ``use_lu_lambdas``,
  ``use_exponential_sigmas`` or ``use_beta_sigmas`` (``make_scheduler`` switches them off). The last point is
  not a timestep but ``final_sigmas_type``: ``"sigma_min"`` ends at σ̃ of τ = 0, i.e. t_min of the discrete
  schedule (``make_scheduler``'s default, so the exported schedule is followed exactly); ``"zero"`` (diffusers'
  default) ends at σ̃ = 0, where the last step is first order and returns x̂0 of the last model call.
- diffusers picks the orders itself (``diffusers_dpm_orders``): warm-up 1, 2, …; with ``lower_order_final`` and
  fewer than 15 steps the last two steps are of order at most 2 and 1 (adaptstep's ``multistep_orders`` follows
  DPM-Solver: below 10 steps only); the last step is also first order with ``final_sigmas_type="zero"`` or
  ``euler_at_final``. Per-step (learned) orders cannot be passed. The 2M
  ``solver_type="midpoint"`` is adaptstep's ``solver_type="dpmsolver"``; the 3M multiplies φ3 by D2 as
  DPM-Solver does, i.e. adaptstep's ``third_order="dpmsolver"``, not ``"exact"``.
- ``EulerDiscreteScheduler`` takes ``sigmas=`` (all N + 1 values σ̃_i, the last one included); the model is
  called at the float timestep interpolated in log σ̃ on the training grid.
- ``UniPCMultistepScheduler`` takes ``sigmas=`` only with ``use_flow_sigmas=True``. A VP schedule goes in as
  flow sigmas s = σ̃/(1 + σ̃): x_s = x/(α + σ) = (1 − s) x0 + s ε follows the same probability-flow ODE (same λ),
  so the solver is unchanged, but the model must be called at x = (α + σ) x_s, not at the scheduler's sample as
  a stock pipeline does; ``sample_with_scheduler`` converts. The last step goes to s = 0 (x̂0) instead of t_min
  (``"sigma_min"`` would repeat the last sigma).
- diffusers keeps betas, ᾱ and sigmas in float32 (σ̃ = √((1 − ᾱ)/ᾱ) cancels near τ = 0: σ̃ of τ = 0, the
  ``"sigma_min"`` end, is 8e-5 off) and casts the sample to float32 inside ``step``: agreement with adaptstep's
  float64 solvers is at float32 rounding, 1e-7 to 3e-5 relative on the tests' Gaussian mixture.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Mapping
from types import ModuleType
from typing import Any

import numpy as np
import torch

from adaptstep.diffusion.export import ExportedSchedule, noise_schedule_from_params
from adaptstep.nn.denoisers import Denoiser, noise_from_x0
from adaptstep.nn.schedules import DiscreteVPSchedule, LinearVPSchedule, NoiseSchedule

SCHEDULER_KINDS = {"dpmsolver++": "DPMSolverMultistepScheduler", "euler": "EulerDiscreteScheduler",
                   "unipc": "UniPCMultistepScheduler"}
FINAL_SIGMAS_TYPES = ("zero", "sigma_min")
CUSTOM_SPACING_OFF = {"use_karras_sigmas": False, "use_lu_lambdas": False, "use_exponential_sigmas": False,
                      "use_beta_sigmas": False}
LOWER_ORDER_FINAL_BELOW = 15  # diffusers lowers the final orders only when steps < 15


def require_diffusers() -> ModuleType:
    """The diffusers module, or an ImportError that says how to install it."""
    try:
        import diffusers
    except ImportError as error:
        raise ImportError("adaptstep's diffusers interop needs the optional dependency diffusers: "
                          "pip install adaptstep[diffusers]") from error
    return diffusers


def diffusers_dpm_orders(steps: int, solver_order: int = 2, lower_order_final: bool = True,
                         final_sigmas_type: str = "zero", euler_at_final: bool = False) -> list[int]:
    """The order of each step of ``DPMSolverMultistepScheduler.step`` over ``steps`` steps (its rule, see the
    module docstring): 1 at the first step, at most 2 at the second, ``solver_order`` afterwards, lowered at the end."""
    if isinstance(steps, bool) or not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    if solver_order not in (1, 2, 3):
        raise ValueError(f"solver_order must be 1, 2 or 3, got {solver_order!r}")
    if final_sigmas_type not in FINAL_SIGMAS_TYPES:
        raise ValueError(f"final_sigmas_type must be one of {FINAL_SIGMAS_TYPES}, got {final_sigmas_type!r}")
    lower = lower_order_final and steps < LOWER_ORDER_FINAL_BELOW
    first_order_last = euler_at_final or lower or final_sigmas_type == "zero"
    orders = []
    for index in range(steps):
        order = min(solver_order, index + 1)
        if index == steps - 1 and first_order_last:
            order = 1
        elif index == steps - 2 and lower:
            order = min(order, 2)
        orders.append(order)
    return orders


def _scheduler_config(schedule: ExportedSchedule, noise_schedule: NoiseSchedule,
                      config: Mapping[str, Any] | None) -> dict[str, Any]:
    """The caller's config, else the exported discrete schedule's betas and x̂0 ("sample") predictions."""
    if config is not None:
        return dict(config)
    if isinstance(noise_schedule, DiscreteVPSchedule):
        return {"num_train_timesteps": noise_schedule.num_steps, "trained_betas": schedule.noise_schedule["betas"],
                "prediction_type": "sample"}
    return {"prediction_type": "sample"}


def _check_grid(scheduler: Any, noise_schedule: DiscreteVPSchedule) -> None:
    if scheduler.config.num_train_timesteps != noise_schedule.num_steps or not torch.allclose(
            scheduler.alphas_cumprod.double(), noise_schedule.alphas_cumprod, rtol=1e-4):
        raise ValueError("config must describe the exported schedule's discrete noise schedule "
                         f"({noise_schedule.num_steps} steps, the same betas); its betas or num_train_timesteps differ")


def _build(scheduler_class: type, defaults: Mapping[str, Any], options: Mapping[str, Any]) -> Any:
    """``scheduler_class(**defaults, **options)``, dropping the defaults it has no parameter for (a pipeline's config
    holds ``_class_name`` and other schedulers' keys, which ``from_config`` drops too); ``options`` must all fit."""
    accepted = inspect.signature(scheduler_class.__init__).parameters
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"options must be parameters of {scheduler_class.__name__}, got unknown {unknown}")
    return scheduler_class(**{**{key: value for key, value in defaults.items() if key in accepted}, **options})


def make_scheduler(schedule: ExportedSchedule, kind: str = "dpmsolver++", config: Mapping[str, Any] | None = None,
                   **options: Any) -> Any:
    """A diffusers scheduler of ``kind`` (``SCHEDULER_KINDS``) with ``set_timesteps`` done so that it follows
    ``schedule``. ``config`` is a base scheduler config (e.g. a pipeline's ``scheduler.config``; default: the
    exported discrete betas, or diffusers' defaults, with ``prediction_type="sample"``); ``options`` override it.

    ``"dpmsolver++"``: ``timesteps=`` the exported integer timesteps but the last, ``final_sigmas_type="sigma_min"``
    (the last timestep must then be 0) and ``solver_order`` = the highest exported order unless given; warns when
    diffusers' orders differ from the exported ones. ``"euler"``: ``sigmas=`` σ̃_0…σ̃_N. ``"unipc"``: flow sigmas
    σ̃/(1 + σ̃) of t_0…t_{N−1}, ending at 0 (see the module docstring)."""
    if kind not in SCHEDULER_KINDS:
        raise ValueError(f"kind must be one of {sorted(SCHEDULER_KINDS)}, got {kind!r}")
    scheduler_class = getattr(require_diffusers(), SCHEDULER_KINDS[kind])
    noise_schedule = noise_schedule_from_params(schedule.noise_schedule)
    settings = _scheduler_config(schedule, noise_schedule, config)
    if kind == "dpmsolver++":
        if schedule.timesteps is None:
            raise ValueError("kind 'dpmsolver++' needs integer timesteps, i.e. a schedule exported from a "
                             "DiscreteVPSchedule (DPMSolverMultistepScheduler has no sigmas=); use 'euler' or 'unipc'")
        timesteps = list(schedule.timesteps)
        if any(not b < a for a, b in zip(timesteps, timesteps[1:])):
            raise ValueError(f"schedule's integer timesteps must be strictly decreasing, got {timesteps} "
                             "(times closer than one grid step round to the same timestep)")
        settings = {**settings, **CUSTOM_SPACING_OFF, "final_sigmas_type": "sigma_min",
                    "solver_order": max(schedule.orders)}
        if {**settings, **options}["final_sigmas_type"] == "sigma_min" and timesteps[-1] != 0:
            raise ValueError(f"final_sigmas_type='sigma_min' ends at timestep 0, the schedule at {timesteps[-1]}; "
                             "pass final_sigmas_type='zero' to end at sigma = 0 instead")
        scheduler = _build(scheduler_class, settings, options)
        _check_grid(scheduler, noise_schedule)
        scheduler.set_timesteps(timesteps=timesteps[:-1])
        config_of = scheduler.config
        orders = diffusers_dpm_orders(schedule.steps, config_of.solver_order, config_of.lower_order_final,
                                      config_of.final_sigmas_type, config_of.euler_at_final)
        if schedule.solver == "dpmpp" and orders != list(schedule.orders):
            warnings.warn(f"diffusers will step with orders {orders}, the schedule has {list(schedule.orders)} "
                          "(lower_order_final, euler_at_final and final_sigmas_type set diffusers' final orders)",
                          stacklevel=2)
        return scheduler
    if kind == "euler":
        scheduler = _build(scheduler_class, settings, options)
        scheduler.set_timesteps(sigmas=list(schedule.edm_sigmas))
        return scheduler
    flow = {"use_flow_sigmas": True, "final_sigmas_type": "zero", "flow_shift": 1.0, "use_dynamic_shifting": False}
    scheduler = _build(scheduler_class, {**settings, **CUSTOM_SPACING_OFF}, {**options, **flow})
    edm_sigmas = np.array(schedule.edm_sigmas[:-1])
    scheduler.set_timesteps(sigmas=edm_sigmas / (1 + edm_sigmas))  # UniPC needs an array here
    return scheduler


def _parametrization(scheduler: Any) -> str:
    """How the scheduler's sample relates to VP x = αx0 + σε: "vp" (x itself), "ve" (x/α) or "flow" (x/(α + σ))."""
    if type(scheduler).__name__ not in SCHEDULER_KINDS.values():
        raise ValueError(f"scheduler must be one of {sorted(SCHEDULER_KINDS.values())}, got {type(scheduler).__name__}")
    if getattr(scheduler.config, "use_flow_sigmas", False):
        return "flow"
    return "ve" if type(scheduler).__name__ == "EulerDiscreteScheduler" else "vp"


def _edm_sigmas(scheduler: Any) -> torch.Tensor:
    """σ̃ of every point of the scheduler's schedule (float64; len(timesteps) + 1 values)."""
    sigmas = scheduler.sigmas.detach().cpu().double()
    return sigmas / (1 - sigmas) if _parametrization(scheduler) == "flow" else sigmas


def scheduler_times(noise_schedule: NoiseSchedule, scheduler: Any) -> torch.Tensor:
    """adaptstep times of the scheduler's points (after ``set_timesteps``): λ = −log σ̃ through ``inverse_lambda``,
    and exactly 0 where σ̃ = 0."""
    edm_sigmas = _edm_sigmas(scheduler)
    positive = edm_sigmas > 0
    times = torch.zeros_like(edm_sigmas)
    times[positive] = noise_schedule.inverse_lambda(-torch.log(edm_sigmas[positive]))
    return times


def _sample_scale(parametrization: str, edm_sigma: torch.Tensor) -> torch.Tensor:
    """c with the scheduler's sample = c·x: 1, 1/α = √(1 + σ̃²) or 1/(α + σ) = √(1 + σ̃²)/(1 + σ̃)."""
    if parametrization == "vp":
        return torch.ones_like(edm_sigma)
    root = torch.sqrt(1 + edm_sigma**2)
    return root if parametrization == "ve" else root / (1 + edm_sigma)


def sample_with_scheduler(denoiser: Denoiser, noise_schedule: NoiseSchedule, scheduler: Any,
                          x: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Integrate from x (VP scaling, at the scheduler's first noise level) through a freshly set scheduler,
    one ``denoiser.predict_x0`` call (at the time of the current σ̃) per ``step``; returns (x at the last
    point, NFE). The model output follows ``prediction_type``: x̂0 ("sample"), ε̂ = (x − αx̂0)/σ ("epsilon"), or
    the flow velocity (x_s − x̂0)/s ("flow_prediction", with flow sigmas)."""
    parametrization = _parametrization(scheduler)
    prediction_type = scheduler.config.prediction_type
    allowed = ("sample", "epsilon", "flow_prediction") if parametrization == "flow" else ("sample", "epsilon")
    if prediction_type not in allowed:
        raise ValueError(f"prediction_type must be one of {allowed} for this scheduler, got {prediction_type!r}")
    if scheduler.num_inference_steps is None or scheduler.step_index is not None:
        raise ValueError("scheduler must be freshly set: call set_timesteps (or make_scheduler) before every run")
    if x.ndim != 2:
        raise ValueError(f"x must have shape (batch, d), got {tuple(x.shape)}")
    edm_sigmas = _edm_sigmas(scheduler).to(x.device, x.dtype)
    times = scheduler_times(noise_schedule, scheduler).to(x.device, x.dtype)
    scales = _sample_scale(parametrization, edm_sigmas)
    scheduler_sigmas = scheduler.sigmas.to(x.device, x.dtype)
    sample = scales[0] * x
    for index, timestep in enumerate(scheduler.timesteps):
        model_input = scheduler.scale_model_input(sample, timestep)  # x itself, except x/(α + σ) for flow
        x_vp = model_input / scales[index] if parametrization == "flow" else model_input
        x0 = denoiser.predict_x0(x_vp, times[index])
        if prediction_type == "sample":
            output = x0
        elif prediction_type == "epsilon":
            output = noise_from_x0(noise_schedule, x_vp, x0, times[index])
        else:
            output = (sample - x0) / scheduler_sigmas[index]
        sample = scheduler.step(output, timestep, sample).prev_sample
    return sample / scales[-1], len(scheduler.timesteps)


SPACINGS = {"linspace": {"timestep_spacing": "linspace"}, "leading": {"timestep_spacing": "leading"},
            "trailing": {"timestep_spacing": "trailing"}, "karras": {"use_karras_sigmas": True},
            "exponential": {"use_exponential_sigmas": True}, "lu_lambdas": {"use_lu_lambdas": True},
            "beta": {"use_beta_sigmas": True}}  # diffusers' own timestep/sigma spacings, by name
CONTROLLER_KINDS = ("dpmsolver++", "unipc")
TRAIN_TIMESTEPS = 1000


def discrete_config(noise_schedule: NoiseSchedule) -> dict[str, Any]:
    """The diffusers config (betas) of a model's noise schedule: a ``DiscreteVPSchedule``'s own betas, or for a
    ``LinearVPSchedule`` (β0, β1) diffusers' "linear" betas β0/N … β1/N on N = 1000 steps (τ at t = (τ + 1)/N, so
    τ = 0 is t_min = 1e-3), the discretisation of the same SDE."""
    if isinstance(noise_schedule, DiscreteVPSchedule):
        return {"num_train_timesteps": noise_schedule.num_steps, "trained_betas": noise_schedule.betas.tolist()}
    if isinstance(noise_schedule, LinearVPSchedule):
        return {"num_train_timesteps": TRAIN_TIMESTEPS, "beta_schedule": "linear",
                "beta_start": noise_schedule.beta_min / TRAIN_TIMESTEPS,
                "beta_end": noise_schedule.beta_max / TRAIN_TIMESTEPS}
    raise ValueError(f"noise_schedule must be a DiscreteVPSchedule or a LinearVPSchedule, got {noise_schedule}")


def diffusers_plan(kind: str, steps: int, noise_schedule: NoiseSchedule, order: int = 2, spacing: str = "linspace",
                   solver_type: str | None = None, lower_order_final: bool = True,
                   euler_at_final: bool = False) -> tuple[list[float], list[int]]:
    """The times (steps + 1, adaptstep's, through ``scheduler_times``) and per-step orders of diffusers'
    ``DPMSolverMultistepScheduler`` (``kind="dpmsolver++"``) or ``UniPCMultistepScheduler`` (``"unipc"``) set to
    ``steps`` with its own ``spacing`` (``SPACINGS``), on the discrete betas of ``noise_schedule``
    (``discrete_config``), ending at σ̃_min (``final_sigmas_type="sigma_min"``); for spacings whose timesteps end
    at σ̃_min themselves (karras, exponential, beta, lu_lambdas: diffusers' last step then goes to σ̃ = 0 and returns
    x̂0), the steps + 1 timesteps of ``set_timesteps(steps + 1)``, so that ``steps`` steps end at t_min. The orders
    are diffusers' for ``steps`` steps ending at σ̃_min (``diffusers_dpm_orders``; UniPC: min(order, steps − i) at
    step i with ``lower_order_final``, at every budget).
    The first time is set to t_max and the last to t_min (where the noise and the reference lie; diffusers'
    σ̃ of τ = N − 1 and τ = 0 are within float32 rounding of them for "linspace"; "leading" starts lower, and a
    stock pipeline would put t_max's noise there)."""
    if kind not in CONTROLLER_KINDS:
        raise ValueError(f"kind must be one of {CONTROLLER_KINDS}, got {kind!r}")
    if spacing not in SPACINGS or (kind == "unipc" and spacing == "lu_lambdas"):
        raise ValueError(f"spacing must be one of {[s for s in SPACINGS if kind != 'unipc' or s != 'lu_lambdas']}, "
                         f"got {spacing!r}")
    solver_types = ("midpoint",) if kind == "dpmsolver++" else ("bh1", "bh2")
    solver_type = solver_types[-1] if solver_type is None else solver_type
    if solver_type not in solver_types:
        raise ValueError(f"solver_type must be one of {solver_types} for {kind}, got {solver_type!r}")
    if order not in (1, 2, 3):
        raise ValueError(f"order must be 1, 2 or 3, got {order!r}")
    if kind == "unipc" and euler_at_final:
        raise ValueError("euler_at_final is an option of dpmsolver++ only")
    options = {**discrete_config(noise_schedule), **SPACINGS[spacing], "prediction_type": "sample",
               "solver_order": order, "solver_type": solver_type, "lower_order_final": bool(lower_order_final),
               "final_sigmas_type": "sigma_min", **({"euler_at_final": bool(euler_at_final)} if kind != "unipc" else {})}
    scheduler_class = getattr(require_diffusers(), SCHEDULER_KINDS[kind])
    scheduler = scheduler_class(**options)
    scheduler.set_timesteps(steps)
    if len(scheduler.timesteps) != steps:
        raise ValueError(f"diffusers set {len(scheduler.timesteps)} timesteps for {steps} steps")
    times = scheduler_times(noise_schedule, scheduler).tolist()
    sigmas = scheduler.sigmas.double()
    if abs(float(sigmas[-2] - sigmas[-1])) <= 1e-6 * float(sigmas[-1]):
        # the spacing's timesteps already end at σ̃_min (karras, exponential, beta, lu_lambdas): diffusers spends its
        # last NFE on a step to σ̃ = 0 (x̂0), not to t_min; its N + 1 timesteps end at t_min in N steps instead
        scheduler = scheduler_class(**options)
        scheduler.set_timesteps(steps + 1)
        times = scheduler_times(noise_schedule, scheduler).tolist()[:-1]
    times[0], times[-1] = float(noise_schedule.t_max), float(noise_schedule.t_min)
    if any(not b < a for a, b in zip(times, times[1:])):
        raise ValueError(f"diffusers' {spacing} schedule of {steps} steps is not strictly decreasing on this model's "
                         f"noise schedule: {times}")
    if kind == "dpmsolver++":
        orders = diffusers_dpm_orders(steps, order, lower_order_final, "sigma_min", euler_at_final)
    else:
        orders = [min(order, index + 1, steps - index if lower_order_final else order) for index in range(steps)]
    return times, orders
