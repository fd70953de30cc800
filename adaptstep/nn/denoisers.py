"""The denoiser protocol: a model that predicts the clean data x̂0 = E[x_0 | x_t] from (x_t, t).

Noise and score predictions follow from x̂0: ε̂ = (x − α_t x̂0)/σ_t and ∇log p_t = −ε̂/σ_t.
"""

from typing import Protocol

import torch

from adaptstep.nn.schedules import NoiseSchedule


class Denoiser(Protocol):
    """A model of x̂0 = E[x_0 | x_t]: ``predict_x0(x, t)``."""

    def predict_x0(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x̂0 for x of shape (batch, d) at t, a 0-d tensor or of shape (batch,)."""
        ...


def per_sample(coefficient: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A 0-d or (batch,) coefficient shaped to broadcast against x of shape (batch, d)."""
    return coefficient.unsqueeze(-1) if coefficient.ndim == 1 else coefficient


def noise_from_x0(schedule: NoiseSchedule, x: torch.Tensor, x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """ε̂ = (x − α_t x̂0) / σ_t."""
    return (x - per_sample(schedule.alpha(t), x) * x0) / per_sample(schedule.sigma(t), x)


def score_from_x0(schedule: NoiseSchedule, x: torch.Tensor, x0: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """∇log p_t(x) = −ε̂ / σ_t = (α_t x̂0 − x) / σ_t²."""
    return noise_from_x0(schedule, x, x0, t) / -per_sample(schedule.sigma(t), x)


class CountingDenoiser:
    """Wraps a denoiser and counts its calls: one call on a whole batch is one NFE.

    Args:
        denoiser: The denoiser to count.

    Attributes:
        nfe: The calls since construction or the last ``reset``.
    """

    def __init__(self, denoiser: Denoiser) -> None:
        self.denoiser = denoiser
        self.nfe = 0

    def predict_x0(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The wrapped denoiser's x̂0, counting one NFE."""
        self.nfe += 1
        return self.denoiser.predict_x0(x, t)

    def reset(self) -> None:
        """Set the count back to 0."""
        self.nfe = 0
