"""Variance-preserving noise schedules in continuous time t ∈ [t_min, t_max].

q(x_t | x_0) = N(α_t x_0, σ_t² I) with α_t² + σ_t² = 1 and half log-SNR λ_t = log α_t − log σ_t,
as in DPM-Solver's ``NoiseScheduleVP`` (Lu et al. 2022). Every method takes a float or a tensor of
times and returns a tensor of the same shape (floats become float64 tensors); the ``*_scalar`` methods take and
return plain floats, computed with ``math`` (a 0-d torch op costs tens of microseconds, a ``math`` call well under
one: the samplers' per-step coefficients use these).
"""

import bisect
import math
from abc import ABC, abstractmethod

import torch

Time = torch.Tensor | float


def _as_tensor(value: Time) -> torch.Tensor:
    return value if isinstance(value, torch.Tensor) else torch.as_tensor(value, dtype=torch.float64)


def _log_alpha_from_lambda(lam: torch.Tensor) -> torch.Tensor:
    """log α = −½ log(1 + e^{−2λ}), from α² = 1 / (1 + e^{−2λ})."""
    return -0.5 * torch.logaddexp(torch.zeros_like(lam), -2.0 * lam)


def _half_log(value: float) -> float:
    """½ log(value) with torch's values where ``math.log`` raises: −inf at 0, nan below."""
    if value > 0:
        return 0.5 * math.log(value)
    return -math.inf if value == 0 else math.nan


def _log_alpha_from_lambda_scalar(lam: float) -> float:
    """``_log_alpha_from_lambda`` for a float: −½ logaddexp(0, −2λ) = −½ (max(0, −2λ) + log1p(e^{−|2λ|}))."""
    return -0.5 * (max(0.0, -2.0 * lam) + math.log1p(math.exp(-abs(2.0 * lam))))


class NoiseSchedule(ABC):
    """A VP schedule; subclasses give log α_t and the inverse of λ_t."""

    t_min: float
    t_max: float

    def _set_domain(self, t_min: float, t_max: float) -> None:
        if not (0.0 < t_min < t_max):
            raise ValueError(f"t_min must satisfy 0 < t_min < t_max = {t_max}, got {t_min}")
        self.t_min, self.t_max = float(t_min), float(t_max)

    @abstractmethod
    def log_alpha(self, t: Time) -> torch.Tensor:
        """log α_t."""

    @abstractmethod
    def inverse_lambda(self, lam: Time) -> torch.Tensor:
        """The time t with λ_t = ``lam``."""

    @abstractmethod
    def log_alpha_scalar(self, t: float) -> float:
        """log α_t of a float t, as a float."""

    @abstractmethod
    def inverse_lambda_scalar(self, lam: float) -> float:
        """The time t with λ_t = ``lam``, for a float, as a float."""

    def log_sigma_scalar(self, t: float) -> float:
        """log σ_t = ½ log(1 − α_t²) of a float t (``log_sigma``; −inf where σ_t = 0, as torch gives)."""
        return _half_log(-math.expm1(2.0 * self.log_alpha_scalar(t)))

    def alpha_scalar(self, t: float) -> float:
        """α_t of a float t."""
        return math.exp(self.log_alpha_scalar(t))

    def lambda_scalar(self, t: float) -> float:
        """λ_t = log α_t − log σ_t of a float t (``lambda_``)."""
        log_alpha = self.log_alpha_scalar(t)
        return log_alpha - _half_log(-math.expm1(2.0 * log_alpha))

    def alpha(self, t: Time) -> torch.Tensor:
        """α_t."""
        return torch.exp(self.log_alpha(t))

    def log_sigma(self, t: Time) -> torch.Tensor:
        """log σ_t = ½ log(1 − α_t²), computed with expm1 for accuracy near t = 0."""
        return 0.5 * torch.log(-torch.expm1(2.0 * self.log_alpha(t)))

    def sigma(self, t: Time) -> torch.Tensor:
        """σ_t."""
        return torch.exp(self.log_sigma(t))

    def lambda_(self, t: Time) -> torch.Tensor:
        """Half log-SNR λ_t = log α_t − log σ_t (decreasing in t)."""
        log_alpha = self.log_alpha(t)
        return log_alpha - 0.5 * torch.log(-torch.expm1(2.0 * log_alpha))

    def edm_sigma(self, t: Time) -> torch.Tensor:
        """EDM noise level σ̃_t = σ_t / α_t = e^{−λ_t}."""
        return torch.exp(-self.lambda_(t))


class LinearVPSchedule(NoiseSchedule):
    """VP-SDE with linear β(t) = β0 + t(β1 − β0): log α_t = −¼t²(β1 − β0) − ½tβ0 (Song et al. 2021).

    Args:
        beta_min: β0 = β(0), finite and >= 0.
        beta_max: β1 = β(1), finite, > 0 and >= ``beta_min``.
        t_min: The schedule's first time, in (0, 1); t_max is 1.

    Raises:
        ValueError: If a value is out of range.
    """

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0, t_min: float = 1e-3) -> None:
        if not (math.isfinite(beta_min) and beta_min >= 0):
            raise ValueError(f"beta_min must be finite and >= 0, got {beta_min}")
        if not (math.isfinite(beta_max) and beta_max >= beta_min and beta_max > 0):
            raise ValueError(f"beta_max must be finite, > 0 and >= beta_min = {beta_min}, got {beta_max}")
        self.beta_min, self.beta_max = float(beta_min), float(beta_max)
        self._set_domain(t_min, 1.0)

    def log_alpha(self, t: Time) -> torch.Tensor:
        """log α_t = −¼t²(β1 − β0) − ½tβ0."""
        t = _as_tensor(t)
        return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def inverse_lambda(self, lam: Time) -> torch.Tensor:
        """The time t with λ_t = ``lam``: the positive root of ¼Δt² + ½β0 t = L.

        With L = −log α and Δ = β1 − β0, in the cancellation-free form t = 2L / (½β0 + √(¼β0² + ΔL)).
        """
        neg_log_alpha = -_log_alpha_from_lambda(_as_tensor(lam))
        delta = self.beta_max - self.beta_min
        root = torch.sqrt(0.25 * self.beta_min**2 + delta * neg_log_alpha)
        return 2.0 * neg_log_alpha / (0.5 * self.beta_min + root)

    def log_alpha_scalar(self, t: float) -> float:
        """log α_t = −¼t²(β1 − β0) − ½tβ0, for a float."""
        return -0.25 * t**2 * (self.beta_max - self.beta_min) - 0.5 * t * self.beta_min

    def inverse_lambda_scalar(self, lam: float) -> float:
        """``inverse_lambda`` for a float."""
        neg_log_alpha = -_log_alpha_from_lambda_scalar(lam)
        root = math.sqrt(0.25 * self.beta_min**2 + (self.beta_max - self.beta_min) * neg_log_alpha)
        return 2.0 * neg_log_alpha / (0.5 * self.beta_min + root)


class CosineVPSchedule(NoiseSchedule):
    """Cosine schedule of Nichol & Dhariwal (2021): α_t = cos(π/2 · (t + s)/(1 + s)) / cos(π/2 · s/(1 + s)).

    α_t → 0 as t → 1, so λ_t → −∞ there. As in DPM-Solver, the schedule ends at ``t_max = 0.9946``
    (λ ≈ −4.8) instead of 1; no other clipping is applied.

    Args:
        s: The offset s, finite and > 0.
        t_min: The schedule's first time, in (0, ``T_MAX``).

    Raises:
        ValueError: If a value is out of range.
    """

    T_MAX = 0.9946

    def __init__(self, s: float = 0.008, t_min: float = 1e-3) -> None:
        if not (math.isfinite(s) and s > 0):
            raise ValueError(f"s must be finite and > 0, got {s}")
        self.s = float(s)
        self._log_alpha_0 = math.log(math.cos(math.pi / 2 * self.s / (1 + self.s)))
        self._set_domain(t_min, self.T_MAX)

    def log_alpha(self, t: Time) -> torch.Tensor:
        """log α_t."""
        t = _as_tensor(t)
        return torch.log(torch.cos(math.pi / 2 * (t + self.s) / (1 + self.s))) - self._log_alpha_0

    def inverse_lambda(self, lam: Time) -> torch.Tensor:
        """The time t with λ_t = ``lam``."""
        log_alpha = _log_alpha_from_lambda(_as_tensor(lam))
        return torch.arccos(torch.exp(log_alpha + self._log_alpha_0)) * 2 * (1 + self.s) / math.pi - self.s

    def log_alpha_scalar(self, t: float) -> float:
        """log α_t, for a float."""
        return math.log(math.cos(math.pi / 2 * (t + self.s) / (1 + self.s))) - self._log_alpha_0

    def inverse_lambda_scalar(self, lam: float) -> float:
        """``inverse_lambda`` for a float."""
        log_alpha = _log_alpha_from_lambda_scalar(lam)
        return math.acos(math.exp(log_alpha + self._log_alpha_0)) * 2 * (1 + self.s) / math.pi - self.s


def _interpolate(x: torch.Tensor, xp: torch.Tensor, fp: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear interpolation through increasing knots ``xp``, extrapolating the end segments."""
    xp, fp = xp.to(x), fp.to(x)
    index = torch.clamp(torch.searchsorted(xp, x.contiguous()) - 1, 0, len(xp) - 2)
    x0, x1, f0, f1 = xp[index], xp[index + 1], fp[index], fp[index + 1]
    return f0 + (x - x0) * (f1 - f0) / (x1 - x0)


def _interpolate_scalar(x: float, xp: list[float], fp: list[float]) -> float:
    """``_interpolate`` for a float (knots as lists; searchsorted's left side is bisect_left)."""
    index = min(max(bisect.bisect_left(xp, x) - 1, 0), len(xp) - 2)
    x0, x1, f0, f1 = xp[index], xp[index + 1], fp[index], fp[index + 1]
    return f0 + (x - x0) * (f1 - f0) / (x1 - x0)


class DiscreteVPSchedule(NoiseSchedule):
    """A discrete-time DDPM schedule made continuous as in DPM-Solver's ``'discrete'`` schedule.

    Step i = 0…N−1 sits at t_i = (i + 1)/N with log α_{t_i} = ½ Σ_{j≤i} log(1 − β_j) (so α_{t_i}² is
    DDPM's ᾱ_i); log α is linear in t between these knots and extrapolated linearly outside them.
    The inverse of λ interpolates t linearly in log α, which is exact for this piecewise-linear log α.
    t_min = 1/N, t_max = 1.

    Args:
        betas: DDPM's β_0…β_{N−1}, 1-D, at least 2, each in (0, 1); None for DDPM's linspace(1e-4, 0.02, N).
        num_steps: N when ``betas`` is None (default 1000, >= 2); if both are given it must equal len(betas).

    Raises:
        ValueError: If ``betas`` or ``num_steps`` is out of range or they disagree.
    """

    def __init__(self, betas: torch.Tensor | None = None, num_steps: int | None = None) -> None:
        if betas is None:
            steps = 1000 if num_steps is None else num_steps
            if not (isinstance(steps, int) and steps >= 2):
                raise ValueError(f"num_steps must be an int >= 2, got {steps!r}")
            betas = torch.linspace(1e-4, 0.02, steps, dtype=torch.float64)
        else:
            betas = torch.as_tensor(betas, dtype=torch.float64).cpu()
            if betas.ndim != 1 or len(betas) < 2:
                raise ValueError(f"betas must be 1-D with at least 2 entries, got shape {tuple(betas.shape)}")
            if not bool(torch.all((betas > 0) & (betas < 1))):
                raise ValueError("betas must all lie in (0, 1)")
            if num_steps is not None and num_steps != len(betas):
                raise ValueError(f"num_steps must equal len(betas) = {len(betas)} when both are given, got {num_steps}")
        self.betas = betas
        self.num_steps = len(betas)
        self.alphas_cumprod = torch.cumprod(1 - betas, dim=0)
        self._log_alphas = 0.5 * torch.cumsum(torch.log1p(-betas), dim=0)
        self._times = torch.arange(1, self.num_steps + 1, dtype=torch.float64) / self.num_steps
        self._set_domain(1.0 / self.num_steps, 1.0)
        self._knots = (self._times.tolist(), self._log_alphas.tolist())  # for the scalar methods
        self._inverse_knots = (self._log_alphas.flip(0).tolist(), self._times.flip(0).tolist())

    def log_alpha(self, t: Time) -> torch.Tensor:
        """log α_t, piecewise linear in t."""
        t = _as_tensor(t)
        return _interpolate(t, self._times, self._log_alphas)

    def inverse_lambda(self, lam: Time) -> torch.Tensor:
        """The time t with λ_t = ``lam``."""
        log_alpha = _log_alpha_from_lambda(_as_tensor(lam))
        return _interpolate(log_alpha, self._log_alphas.flip(0), self._times.flip(0))

    def log_alpha_scalar(self, t: float) -> float:
        """log α_t, piecewise linear in t, for a float."""
        return _interpolate_scalar(t, *self._knots)

    def inverse_lambda_scalar(self, lam: float) -> float:
        """``inverse_lambda`` for a float."""
        return _interpolate_scalar(_log_alpha_from_lambda_scalar(lam), *self._inverse_knots)

    def time_to_index(self, t: Time) -> torch.Tensor:
        """Continuous DDPM timestep index i = tN − 1 (t_i = (i + 1)/N; non-integer between knots)."""
        return _as_tensor(t) * self.num_steps - 1

    def index_to_time(self, index: torch.Tensor | int) -> torch.Tensor:
        """t = (i + 1)/N for DDPM timestep index i."""
        return (_as_tensor(index).to(torch.float64) + 1) / self.num_steps


SCHEDULES: dict[str, type[NoiseSchedule]] = {
    "linear": LinearVPSchedule,
    "cosine": CosineVPSchedule,
    "discrete": DiscreteVPSchedule,
}


def make_noise_schedule(name: str, **kwargs) -> NoiseSchedule:
    """The named schedule (``"linear"``, ``"cosine"`` or ``"discrete"``) built with ``kwargs``.

    Raises:
        ValueError: If ``name`` is unknown.
    """
    if name not in SCHEDULES:
        raise ValueError(f"name must be one of {sorted(SCHEDULES)}, got {name!r}")
    return SCHEDULES[name](**kwargs)
