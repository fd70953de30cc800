"""Interpolants x_t = α_t·x0 + σ_t·ε and the conversions between them (Kim et al. 2025, RBF, Sec. 4–5).

t = 1 is noise, t = 0 is data. For a velocity u_t(x) = E[α̇_t x0 + σ̇_t ε | x_t = x] (Eqs. 8 and 19):

- score      ∇log p_t(x) = (α_t u − α̇_t x) / (σ_t (α̇_t σ_t − α_t σ̇_t)),
- Tweedie    x̂0(x)       = (σ_t u − σ̇_t x) / (α̇_t σ_t − σ̇_t α_t).

``LinearInterpolant`` is rectified flow's α = 1 − t, σ = t. ``VPInterpolant`` is the VP-SDE path with
T(s) = ½s²(β_max − β_min) + s·β_min, ᾱ = e^{−T/2}, σ̄ = √(1 − e^{−T}) (β_min = 0.1, β_max = 20).
``to_vp_time`` maps VP time s to the linear time of equal signal-to-noise ratio, t_s = σ̄/(ᾱ + σ̄), and the
scale c_s = ᾱ + σ̄ with x̄ = c_s·x (Eqs. 10–11).
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import torch

Time = torch.Tensor | float


def as_time(t: Time) -> torch.Tensor:
    """``t`` as a float64 tensor."""
    return t.to(torch.float64) if isinstance(t, torch.Tensor) else torch.as_tensor(t, dtype=torch.float64)


class Interpolant(ABC):
    """α_t, σ_t and their time derivatives as float64 tensors of t's shape."""

    name: str

    @abstractmethod
    def alpha(self, t: Time) -> torch.Tensor:
        """The data coefficient α_t."""

    @abstractmethod
    def sigma(self, t: Time) -> torch.Tensor:
        """The noise coefficient σ_t."""

    @abstractmethod
    def d_alpha(self, t: Time) -> torch.Tensor:
        """dα_t/dt."""

    @abstractmethod
    def d_sigma(self, t: Time) -> torch.Tensor:
        """dσ_t/dt."""

    def coefficients(self, t: Time, like: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """(α, σ, α̇, σ̇) shaped to broadcast against ``like`` (batch, d) and in its dtype and device."""
        t = as_time(t)
        values = (self.alpha(t), self.sigma(t), self.d_alpha(t), self.d_sigma(t))
        shape = (-1, 1) if t.ndim == 1 else ()
        return tuple(value.reshape(shape).to(like.device, like.dtype) for value in values)

    def score(self, x: torch.Tensor, velocity: torch.Tensor, t: Time) -> torch.Tensor:
        """∇log p_t(x) = (α u − α̇ x) / (σ (α̇ σ − α σ̇))."""
        alpha, sigma, d_alpha, d_sigma = self.coefficients(t, x)
        return (alpha * velocity - d_alpha * x) / (sigma * (d_alpha * sigma - alpha * d_sigma))

    def tweedie(self, x: torch.Tensor, velocity: torch.Tensor, t: Time) -> torch.Tensor:
        """x̂0 = E[x0 | x_t = x] = (σ u − σ̇ x) / (α̇ σ − σ̇ α)."""
        alpha, sigma, d_alpha, d_sigma = self.coefficients(t, x)
        return (sigma * velocity - d_sigma * x) / (d_alpha * sigma - d_sigma * alpha)


class LinearInterpolant(Interpolant):
    """Rectified flow: α_t = 1 − t, σ_t = t."""

    name = "linear"

    def alpha(self, t: Time) -> torch.Tensor:
        """α_t = 1 − t."""
        return 1.0 - as_time(t)

    def sigma(self, t: Time) -> torch.Tensor:
        """σ_t = t."""
        return as_time(t).clone()

    def d_alpha(self, t: Time) -> torch.Tensor:
        """α̇_t = −1."""
        return torch.full_like(as_time(t), -1.0)

    def d_sigma(self, t: Time) -> torch.Tensor:
        """σ̇_t = 1."""
        return torch.ones_like(as_time(t))


class VPInterpolant(Interpolant):
    """The VP path with a linear β schedule: T(s) = ½s²(β_max − β_min) + s·β_min, ᾱ = e^{−T/2}, σ̄ = √(1 − e^{−T}).

    Args:
        beta_min: β at s = 0 (> 0).
        beta_max: β at s = 1 (> ``beta_min``).

    Raises:
        ValueError: Unless 0 < beta_min < beta_max.
    """

    name = "vp"

    def __init__(self, beta_min: float = 0.1, beta_max: float = 20.0) -> None:
        if not 0 < beta_min < beta_max:
            raise ValueError(f"beta_min and beta_max must satisfy 0 < beta_min < beta_max, got {beta_min}, {beta_max}")
        self.beta_min, self.beta_max = float(beta_min), float(beta_max)

    def _integral(self, s: Time) -> tuple[torch.Tensor, torch.Tensor]:
        """T(s) and T'(s) = s(β_max − β_min) + β_min."""
        s = as_time(s)
        delta = self.beta_max - self.beta_min
        return 0.5 * s**2 * delta + s * self.beta_min, s * delta + self.beta_min

    def alpha(self, s: Time) -> torch.Tensor:
        """ᾱ_s = e^{−T(s)/2}."""
        integral, _ = self._integral(s)
        return torch.exp(-0.5 * integral)

    def sigma(self, s: Time) -> torch.Tensor:
        """σ̄_s = √(1 − e^{−T(s)})."""
        integral, _ = self._integral(s)
        return torch.sqrt(-torch.expm1(-integral))

    def d_alpha(self, s: Time) -> torch.Tensor:
        """dᾱ_s/ds = −½T'(s)·ᾱ_s."""
        integral, rate = self._integral(s)
        return -0.5 * rate * torch.exp(-0.5 * integral)

    def d_sigma(self, s: Time) -> torch.Tensor:
        """dσ̄_s/ds = ½T'(s)·e^{−T(s)}/σ̄_s."""
        integral, rate = self._integral(s)
        return 0.5 * rate * torch.exp(-integral) / torch.sqrt(-torch.expm1(-integral))

    def linear_time(self, s: Time) -> torch.Tensor:
        """t_s = σ̄/(ᾱ + σ̄): the linear-interpolant time with the same signal-to-noise ratio as s."""
        alpha, sigma = self.alpha(s), self.sigma(s)
        return sigma / (alpha + sigma)

    def time_of_linear(self, t: float) -> float:
        """The inverse of ``linear_time`` for 0 < t < t_1 (bisection; t_s increases with s).

        Raises:
            ValueError: If ``t`` is outside (0, t_1).
        """
        low, high = 0.0, 1.0
        if not 0 < t < float(self.linear_time(1.0)):
            raise ValueError(f"t must be in (0, {float(self.linear_time(1.0)):.6f}) to map to VP time, got {t}")
        for _ in range(80):
            middle = 0.5 * (low + high)
            low, high = (middle, high) if float(self.linear_time(middle)) < t else (low, middle)
        return 0.5 * (low + high)


class VPConvertedFlow:
    """A linear-interpolant flow seen on the VP path (Eqs. 10–11 of Kim et al. 2025).

    x̄ = c_s·x with c_s = ᾱ + σ̄ and ū_s(x̄) = (ċ_s/c_s)·x̄ + c_s·ṫ_s·u_{t_s}(x̄/c_s), where
    ṫ_s = (σ̄'ᾱ − σ̄ᾱ')/(ᾱ + σ̄)² and ċ_s = ᾱ' + σ̄'.

    Args:
        flow (GMMFlow | FlowNet): The flow on the linear interpolant, with ``velocity(x, t)``, ``dim``, ``device``
            and ``dtype``.
        path: The VP path.
    """

    def __init__(self, flow, path: VPInterpolant) -> None:
        self.flow, self.path = flow, path
        self.dim, self.device, self.dtype = flow.dim, flow.device, flow.dtype

    def velocity(self, x: torch.Tensor, s: Time) -> torch.Tensor:
        """ū_s(x̄) at VP time ``s``."""
        alpha, sigma, d_alpha, d_sigma = self.path.coefficients(s, x)
        scale, d_scale = alpha + sigma, d_alpha + d_sigma
        d_time = (d_sigma * alpha - sigma * d_alpha) / scale**2
        t = self.path.linear_time(as_time(s))
        return (d_scale / scale) * x + scale * d_time * self.flow.velocity(x / scale, t)
