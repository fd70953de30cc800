"""The exact flow of a Gaussian mixture under the linear interpolant x_t = (1 − t)·x0 + t·ε.

p_t is the mixture of N((1 − t)μ_k, (1 − t)²Σ_k + t²I), so ``GaussianMixture`` of ``adaptstep.nn.gmm``
with the coefficients α_t = 1 − t, σ_t = t (``LinearInterpolant`` in place of a noise schedule) gives
x̂0 = E[x0 | x_t] and ∇log p_t in closed form. The velocity is
u_t(x) = E[ε − x0 | x_t = x] = ε̂ − x̂0 with ε̂ = −t·∇log p_t(x), exact for every t ∈ [0, 1].
"""

from __future__ import annotations

import torch

from adaptstep.flow.interpolants import LinearInterpolant, Time
from adaptstep.nn.gmm import GaussianMixture, gmm_2d, gmm_64d


class GMMFlow:
    """The closed-form velocity of a Gaussian mixture under the linear interpolant.

    ``mixture`` exposes data sampling and log-densities.

    Args:
        weights (array-like): Component weights, shape (K,), as in ``GaussianMixture``.
        means (array-like): Component means, shape (K, d).
        covariances (array-like): Component covariances, shape (K, d, d).
        device: The torch device, ``"auto"`` for ``resolve_device``'s choice.
        dtype: The dtype of every computation.
    """

    def __init__(self, weights, means, covariances, device: str | torch.device = "auto",
                 dtype: torch.dtype = torch.float64) -> None:
        self.mixture = GaussianMixture(weights, means, covariances, LinearInterpolant(), device, dtype)
        self.dim, self.device, self.dtype = self.mixture.dim, self.mixture.device, self.mixture.dtype

    def velocity(self, x: torch.Tensor, t: Time) -> torch.Tensor:
        """u_t(x) = −t·∇log p_t(x) − E[x0 | x_t = x]."""
        t = torch.as_tensor(t, dtype=torch.float64)
        scale = (t.reshape(-1, 1) if t.ndim else t).to(x.device, x.dtype)
        return -scale * self.mixture.score(x, t) - self.mixture.predict_x0(x, t)

    def predict_x0(self, x: torch.Tensor, t: Time) -> torch.Tensor:
        """x̂0 = E[x0 | x_t = x]."""
        return self.mixture.predict_x0(x, t)

    def log_prob(self, x: torch.Tensor, t: Time = 0.0) -> torch.Tensor:
        """log p_t(x); the data's log-density at t = 0."""
        return self.mixture.log_prob(x, t)

    def sample_data(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` samples of the data distribution."""
        return self.mixture.sample_data(n, generator)


def _flow_of(mixture: GaussianMixture, device: str | torch.device) -> GMMFlow:
    return GMMFlow(mixture.weights.cpu(), mixture.means.cpu(), mixture.covariances.cpu(), device)


def gmm_flow_2d(device: str | torch.device = "auto", **kwargs) -> GMMFlow:
    """The 8-mode ring of ``gmm_2d`` (radius 2, std 0.2) as a flow."""
    return _flow_of(gmm_2d(device="cpu", **kwargs), device)


def gmm_flow_64d(device: str | torch.device = "auto", **kwargs) -> GMMFlow:
    """The random 16-component 64-d mixture of ``gmm_64d`` as a flow."""
    return _flow_of(gmm_64d(device="cpu", **kwargs), device)
