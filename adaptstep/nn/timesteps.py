"""Hand-made timestep schedules: N + 1 decreasing times from t_start (default t_max) to t_end (default t_min).

``time_uniform``, ``time_quadratic`` and ``logsnr_uniform`` follow DPM-Solver's ``get_time_steps``; ``edm``
is Karras et al. (2022)'s ρ-schedule in σ̃ = σ_t/α_t, mapped back to t through λ = −log σ̃.
"""

import torch

from adaptstep.nn.device import resolve_device
from adaptstep.nn.schedules import NoiseSchedule


def endpoints(schedule: NoiseSchedule, steps: int, t_start: float | None, t_end: float | None) -> tuple[float, float]:
    """The checked (t_start, t_end) of a schedule of ``steps`` steps, None meaning t_max and t_min.

    Raises:
        ValueError: If ``steps`` is not an int >= 1 or not 0 < t_end < t_start <= t_max.
    """
    if isinstance(steps, bool) or not (isinstance(steps, int) and steps >= 1):
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    t_start = schedule.t_max if t_start is None else float(t_start)
    t_end = schedule.t_min if t_end is None else float(t_end)
    if not (0 < t_end < t_start <= schedule.t_max):
        raise ValueError(f"need 0 < t_end < t_start <= t_max = {schedule.t_max}, got t_start={t_start}, t_end={t_end}")
    return t_start, t_end


def _finish(times: torch.Tensor, t_start: float, t_end: float, device: str | torch.device) -> torch.Tensor:
    """Pin the endpoints exactly (inverse_lambda rounds) and move to the device."""
    times[0], times[-1] = t_start, t_end
    return times.to(resolve_device(device))


def time_uniform(schedule: NoiseSchedule, steps: int, t_start: float | None = None, t_end: float | None = None,
                 device: str | torch.device = "auto") -> torch.Tensor:
    """linspace(t_start, t_end, steps + 1)."""
    t_start, t_end = endpoints(schedule, steps, t_start, t_end)
    return _finish(torch.linspace(t_start, t_end, steps + 1, dtype=torch.float64), t_start, t_end, device)


def time_quadratic(schedule: NoiseSchedule, steps: int, t_start: float | None = None, t_end: float | None = None,
                   device: str | torch.device = "auto") -> torch.Tensor:
    """linspace(√t_start, √t_end, steps + 1)²."""
    t_start, t_end = endpoints(schedule, steps, t_start, t_end)
    times = torch.linspace(t_start**0.5, t_end**0.5, steps + 1, dtype=torch.float64) ** 2
    return _finish(times, t_start, t_end, device)


def logsnr_uniform(schedule: NoiseSchedule, steps: int, t_start: float | None = None, t_end: float | None = None,
                   device: str | torch.device = "auto") -> torch.Tensor:
    """Uniform in half log-SNR λ between λ(t_start) and λ(t_end), mapped back with inverse_lambda."""
    t_start, t_end = endpoints(schedule, steps, t_start, t_end)
    bounds = schedule.lambda_(torch.tensor([t_start, t_end], dtype=torch.float64))
    lambdas = torch.linspace(float(bounds[0]), float(bounds[1]), steps + 1, dtype=torch.float64)
    return _finish(schedule.inverse_lambda(lambdas), t_start, t_end, device)


def edm(schedule: NoiseSchedule, steps: int, t_start: float | None = None, t_end: float | None = None,
        rho: float = 7.0, device: str | torch.device = "auto") -> torch.Tensor:
    """Karras et al. (2022)'s ρ-schedule in σ̃ = σ_t/α_t, mapped back to t.

    σ̃_i = (σ̃_max^{1/ρ} + i/N (σ̃_min^{1/ρ} − σ̃_max^{1/ρ}))^ρ, i = 0…N, with σ̃ at t_start and t_end.
    Unlike EDM the last point is t_end (σ̃_min), not σ̃ = 0.

    Args:
        schedule: The noise schedule.
        steps: N, the number of steps (>= 1).
        t_start: The first time; None for t_max.
        t_end: The last time; None for t_min.
        rho: ρ (> 0); larger values crowd the steps near t_end.
        device: The torch device, ``"auto"`` for ``resolve_device``'s choice.

    Raises:
        ValueError: If ``rho`` or the endpoints are out of range.
    """
    t_start, t_end = endpoints(schedule, steps, t_start, t_end)
    if not rho > 0:
        raise ValueError(f"rho must be > 0, got {rho}")
    sigma_max, sigma_min = schedule.edm_sigma(torch.tensor([t_start, t_end], dtype=torch.float64)).tolist()
    fraction = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    sigmas = (sigma_max ** (1 / rho) + fraction * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho
    return _finish(schedule.inverse_lambda(-torch.log(sigmas)), t_start, t_end, device)


TIMESTEPS = {"time_uniform": time_uniform, "time_quadratic": time_quadratic, "logsnr_uniform": logsnr_uniform, "edm": edm}


def make_timesteps(name: str, schedule: NoiseSchedule, steps: int, t_start: float | None = None,
                   t_end: float | None = None, device: str | torch.device = "auto", **kwargs) -> torch.Tensor:
    """The named schedule (see ``TIMESTEPS``) of ``steps + 1`` decreasing float64 times.

    Args:
        name: A key of ``TIMESTEPS``.
        schedule: The noise schedule.
        steps: The number of steps (>= 1).
        t_start: The first time; None for t_max.
        t_end: The last time; None for t_min.
        device: The torch device, ``"auto"`` for ``resolve_device``'s choice.
        **kwargs (float): Further arguments of the schedule (``rho`` for ``edm``).

    Raises:
        ValueError: If ``name`` is unknown or the steps or endpoints are out of range.
    """
    if name not in TIMESTEPS:
        raise ValueError(f"name must be one of {sorted(TIMESTEPS)}, got {name!r}")
    return TIMESTEPS[name](schedule, steps, t_start, t_end, device=device, **kwargs)
