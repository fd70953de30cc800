"""Gaussian mixtures diffused exactly: closed-form marginals, scores and denoisers.

For x_0 ~ Σ_k w_k N(μ_k, Σ_k) under VP diffusion, p_t = Σ_k w_k N(α_t μ_k, S_k) with
S_k = α_t² Σ_k + σ_t² I. With responsibilities γ_k ∝ w_k N(x; α_t μ_k, S_k) (via logsumexp):
∇log p_t(x) = −Σ_k γ_k S_k⁻¹(x − α_t μ_k) and E[x_0 | x_t = x] = Σ_k γ_k [μ_k + α_t Σ_k S_k⁻¹(x − α_t μ_k)].
Each Σ_k = U_k diag(e_k) U_kᵀ is diagonalised once, so S_k = U_k diag(α_t² e_k + σ_t²) U_kᵀ and every
solve and log-determinant at any t is exact and cheap (no matrix inverse, no per-t factorisation).
"""

import math

import numpy as np
import torch

from adaptstep.nn.device import resolve_device
from adaptstep.nn.schedules import LinearVPSchedule, NoiseSchedule, Time, _as_tensor


class GaussianMixture:
    """An exact denoiser for Gaussian-mixture data.

    Args:
        weights (array-like): Component weights, shape (K,), each > 0; normalised to sum to 1.
        means (array-like): Component means, shape (K, d).
        covariances (array-like): Component covariances, shape (K, d, d), symmetric positive definite.
        schedule: The VP noise schedule of the diffusion.
        device: The torch device, ``"auto"`` for ``resolve_device``'s choice.
        dtype: The dtype of every computation.

    Raises:
        ValueError: If the shapes disagree, a weight is not finite and > 0, or a covariance is not finite,
            symmetric and positive definite.
    """

    def __init__(
        self,
        weights,
        means,
        covariances,
        schedule: NoiseSchedule,
        device: str | torch.device = "auto",
        dtype: torch.dtype = torch.float64,
    ) -> None:
        self.device, self.dtype, self.schedule = resolve_device(device), dtype, schedule
        weights = torch.as_tensor(weights, dtype=torch.float64).cpu()
        means = torch.as_tensor(means, dtype=torch.float64).cpu()
        covariances = torch.as_tensor(covariances, dtype=torch.float64).cpu()
        if weights.ndim != 1 or len(weights) == 0:
            raise ValueError(f"weights must have shape (K,) with K >= 1, got {tuple(weights.shape)}")
        components = len(weights)
        if not bool(torch.all(torch.isfinite(weights) & (weights > 0))):
            raise ValueError(f"weights must be finite and > 0, got {weights.tolist()}")
        if means.ndim != 2 or means.shape[0] != components:
            raise ValueError(f"means must have shape (K, d) with K = {components}, got {tuple(means.shape)}")
        dim = means.shape[1]
        if covariances.shape != (components, dim, dim):
            raise ValueError(f"covariances must have shape {(components, dim, dim)}, got {tuple(covariances.shape)}")
        if not (bool(torch.all(torch.isfinite(means))) and bool(torch.all(torch.isfinite(covariances)))):
            raise ValueError("means and covariances must be finite")
        scale = covariances.abs().amax(dim=(1, 2), keepdim=True)
        if not bool(torch.all((covariances - covariances.transpose(1, 2)).abs() <= 1e-10 * scale)):
            raise ValueError("covariances must be symmetric")
        eigenvalues, eigenvectors = torch.linalg.eigh(0.5 * (covariances + covariances.transpose(1, 2)))
        if not bool(torch.all(eigenvalues > 0)):
            raise ValueError(f"covariances must be positive definite, got eigenvalues down to {eigenvalues.min():.3g}")
        self.dim, self.components = dim, components
        self.weights = (weights / weights.sum()).to(self.device, dtype)
        self.means = means.to(self.device, dtype)
        self.covariances = covariances.to(self.device, dtype)
        self._eigenvalues = eigenvalues.to(self.device, dtype)
        self._eigenvectors = eigenvectors.to(self.device, dtype)

    def _coefficients(self, x: torch.Tensor, t: Time) -> tuple[torch.Tensor, torch.Tensor]:
        """α_t and σ_t of shape (1, 1) or (batch, 1)."""
        t = _as_tensor(t).to(self.device, self.dtype)
        if t.ndim > 1 or (t.ndim == 1 and len(t) != len(x)):
            raise ValueError(f"t must be 0-d or of shape ({len(x)},), got {tuple(t.shape)}")
        return self.schedule.alpha(t).reshape(-1, 1), self.schedule.sigma(t).reshape(-1, 1)

    def _components(self, x: torch.Tensor, t: Time):
        """Per component: log w_k N_k(x), the eigenbasis residual y = Uᵀ(x − αμ), the eigenvalues s of S_k
        (all of shape (batch, K[, d])) and α."""
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (batch, {self.dim}), got {tuple(x.shape)}")
        alpha, sigma = self._coefficients(x, t)
        residual = x[:, None, :] - alpha[:, :, None] * self.means  # (B, K, d)
        y = torch.einsum("bkd,kde->bke", residual, self._eigenvectors)
        s = alpha[:, :, None] ** 2 * self._eigenvalues + sigma[:, :, None] ** 2
        log_normal = -0.5 * ((y**2 / s).sum(-1) + torch.log(s).sum(-1) + self.dim * math.log(2 * math.pi))
        return torch.log(self.weights) + log_normal, y, s, alpha

    def component_log_prob(self, x: torch.Tensor, t: Time) -> torch.Tensor:
        """log w_k N(x; α_t μ_k, S_k) per component, shape (batch, K)."""
        log_joint, _, _, _ = self._components(x, t)
        return log_joint

    def log_prob(self, x: torch.Tensor, t: Time) -> torch.Tensor:
        """log p_t(x), shape (batch,)."""
        log_joint, _, _, _ = self._components(x, t)
        return torch.logsumexp(log_joint, dim=1)

    def score(self, x: torch.Tensor, t: Time) -> torch.Tensor:
        """∇log p_t(x) = −Σ_k γ_k S_k⁻¹(x − α_t μ_k)."""
        log_joint, y, s, _ = self._components(x, t)
        gamma = torch.softmax(log_joint, dim=1)
        return -torch.einsum("bk,bke,kde->bd", gamma, y / s, self._eigenvectors)

    def predict_x0(self, x: torch.Tensor, t: Time) -> torch.Tensor:
        """E[x_0 | x_t = x] = Σ_k γ_k [μ_k + α_t Σ_k S_k⁻¹(x − α_t μ_k)]."""
        log_joint, y, s, alpha = self._components(x, t)
        gamma = torch.softmax(log_joint, dim=1)
        correction = torch.einsum("bk,bke,kde->bd", gamma, self._eigenvalues * y / s, self._eigenvectors)
        return gamma @ self.means + alpha * correction

    def mean(self, t: Time) -> torch.Tensor:
        """E[x_t] = α_t Σ_k w_k μ_k."""
        return self.schedule.alpha(_as_tensor(t)).to(self.device, self.dtype) * (self.weights @ self.means)

    def covariance(self, t: Time) -> torch.Tensor:
        """Cov[x_t] = Σ_k w_k (α_t² (Σ_k + μ_k μ_kᵀ) + σ_t² I) − E[x_t] E[x_t]ᵀ."""
        t = _as_tensor(t)
        alpha = self.schedule.alpha(t).to(self.device, self.dtype)
        sigma = self.schedule.sigma(t).to(self.device, self.dtype)
        second = torch.einsum("k,kde->de", self.weights,
                              self.covariances + self.means[:, :, None] * self.means[:, None])
        mean = self.mean(t)
        eye = torch.eye(self.dim, device=self.device, dtype=self.dtype)
        return alpha**2 * second + sigma**2 * eye - torch.outer(mean, mean)

    def _standard_normal(self, n: int, generator: torch.Generator | None) -> torch.Tensor:
        device = generator.device if generator is not None else self.device
        return torch.randn(n, self.dim, generator=generator, device=device, dtype=self.dtype).to(self.device)

    def sample_data(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n exact samples of x_0, shape (n, d). Randomness comes from ``generator`` on its own device."""
        if not (isinstance(n, int) and n >= 1):
            raise ValueError(f"n must be an int >= 1, got {n!r}")
        device = generator.device if generator is not None else self.device
        labels = torch.multinomial(self.weights.to(device), n, replacement=True, generator=generator).to(self.device)
        z = self._standard_normal(n, generator)
        roots = self._eigenvectors * torch.sqrt(self._eigenvalues)[:, None, :]  # Σ_k = roots rootsᵀ
        return self.means[labels] + torch.einsum("nde,ne->nd", roots[labels], z)

    def sample_marginal(self, n: int, t: Time, generator: torch.Generator | None = None) -> torch.Tensor:
        """n exact samples of p_t: α_t x_0 + σ_t z (for instance the initial noise x_T ~ p_T)."""
        t = _as_tensor(t)
        if t.ndim != 0:
            raise ValueError(f"t must be a scalar, got shape {tuple(t.shape)}")
        x0 = self.sample_data(n, generator)
        alpha = self.schedule.alpha(t).to(self.device, self.dtype)
        sigma = self.schedule.sigma(t).to(self.device, self.dtype)
        return alpha * x0 + sigma * self._standard_normal(n, generator)


def gmm_2d(
    schedule: NoiseSchedule | None = None,
    components: int = 8,
    radius: float = 2.0,
    std: float = 0.2,
    device: str | torch.device = "auto",
    dtype: torch.dtype = torch.float64,
) -> GaussianMixture:
    """A 2-d mixture of equal-weight isotropic modes evenly spaced on a circle.

    Args:
        schedule: The noise schedule; None for ``LinearVPSchedule()``.
        components: The number of modes.
        radius: The circle's radius.
        std: Each mode's standard deviation.
        device: The torch device, ``"auto"`` for ``resolve_device``'s choice.
        dtype: The dtype of every computation.
    """
    angles = 2 * math.pi * torch.arange(components, dtype=torch.float64) / components
    means = radius * torch.stack([torch.cos(angles), torch.sin(angles)], dim=1)
    covariances = std**2 * torch.eye(2, dtype=torch.float64).expand(components, 2, 2)
    weights = torch.full((components,), 1.0 / components, dtype=torch.float64)
    return GaussianMixture(weights, means, covariances, schedule or LinearVPSchedule(), device, dtype)


def gmm_64d(
    seed: int = 0,
    components: int = 16,
    dim: int = 64,
    schedule: NoiseSchedule | None = None,
    device: str | torch.device = "auto",
    dtype: torch.dtype = torch.float64,
) -> GaussianMixture:
    """A reproducible random mixture in ``dim`` dimensions, drawn with numpy ``default_rng(seed)``.

    Weights ∝ U[0.5, 1.5]; means ~ N(0, I) (data of unit scale per coordinate, like images in [−1, 1]);
    Σ_k = Q_k diag(e_k) Q_kᵀ with Q_k a random rotation, a component scale c_k log-uniform in [0.05, 0.5]
    and e_k = c_k² · (log-uniform anisotropy in [0.1, 1]), so standard deviations span 0.016 to 0.5.

    Args:
        seed: The numpy seed of the mixture.
        components: The number of components K.
        dim: The dimension d.
        schedule: The noise schedule; None for ``LinearVPSchedule()``.
        device: The torch device, ``"auto"`` for ``resolve_device``'s choice.
        dtype: The dtype of every computation.
    """
    rng = np.random.default_rng(seed)
    weights = rng.uniform(0.5, 1.5, components)
    means = rng.standard_normal((components, dim))
    rotations = np.linalg.qr(rng.standard_normal((components, dim, dim)))[0]
    scales = np.exp(rng.uniform(math.log(0.05), math.log(0.5), (components, 1)))
    eigenvalues = scales**2 * np.exp(rng.uniform(math.log(0.1), 0.0, (components, dim)))
    covariances = np.einsum("kde,ke,kfe->kdf", rotations, eigenvalues, rotations)
    return GaussianMixture(weights, means, covariances, schedule or LinearVPSchedule(), device, dtype)
