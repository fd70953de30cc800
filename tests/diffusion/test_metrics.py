import math

import numpy as np
import pytest
import torch

from adaptstep.diffusion.metrics import (
    endpoint_rmse,
    frechet_distance,
    median_bandwidth,
    mmd_rbf,
    sliced_wasserstein2,
)


def gaussian(n: int, d: int, seed: int, mean: float = 0.0) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64) + mean


def test_sliced_wasserstein_is_zero_for_identical_sets_and_grows_with_a_shift():
    x = gaussian(2000, 3, seed=1)
    assert sliced_wasserstein2(x, x) == 0.0
    distances = [sliced_wasserstein2(x, x + shift) for shift in (0.1, 0.5, 2.0)]
    assert distances == sorted(distances)
    # a constant shift c·1 moves every projection u·x by c·(u·1); SW₂² = c² E(u·1)² = c² (|1|²/d = 1)
    assert distances[-1] == pytest.approx(2.0, rel=0.1)


def test_sliced_wasserstein_matches_closed_form_for_shifted_gaussians():
    # N(0, I) vs N(m, I): projections are N(0, 1) vs N(u·m, 1), so SW₂² = E_u (u·m)² = |m|²/d
    d, m = 4, torch.tensor([2.0, -1.0, 0.5, 1.5], dtype=torch.float64)
    x, y = gaussian(2000, d, seed=2), gaussian(2000, d, seed=3) + m
    expected = math.sqrt(m.square().sum().item() / d)
    assert sliced_wasserstein2(x, y, projections=2000) == pytest.approx(expected, rel=0.05)


def test_sliced_wasserstein_with_unequal_sizes_uses_quantiles():
    x, y = gaussian(4000, 2, seed=4), gaussian(1000, 2, seed=5)
    assert sliced_wasserstein2(x, y) < 0.1
    shift = torch.tensor([3.0, 4.0], dtype=torch.float64)
    assert sliced_wasserstein2(x, y + shift, projections=1000) == pytest.approx(5.0 / math.sqrt(2), rel=0.05)
    # duplicating every point leaves the empirical distribution unchanged (up to interpolation in the tails)
    assert sliced_wasserstein2(y, torch.cat([y, y])) < 0.01


def test_sliced_wasserstein_is_reproducible_and_rejects_bad_input():
    x, y = gaussian(500, 3, seed=6), gaussian(500, 3, seed=7, mean=0.3)
    assert sliced_wasserstein2(x, y) == sliced_wasserstein2(x, y)
    with pytest.raises(ValueError, match="projections"):
        sliced_wasserstein2(x, y, projections=0)
    with pytest.raises(ValueError, match="same dimension"):
        sliced_wasserstein2(x, y[:, :2])


def test_mmd_is_near_zero_for_one_distribution_and_grows_with_a_shift():
    x = gaussian(1000, 2, seed=8)
    bandwidth = median_bandwidth(x)
    assert bandwidth == pytest.approx(2.0 * math.sqrt(math.log(2.0)), rel=0.05)  # median |z|, z ~ N(0, 2I) in 2-D
    same = mmd_rbf(x, gaussian(1000, 2, seed=9), bandwidth)
    shifted = [mmd_rbf(x, gaussian(1000, 2, seed=9, mean=shift), bandwidth) for shift in (0.25, 0.5, 1.0)]
    assert abs(same) < 2e-3
    assert shifted == sorted(shifted) and shifted[0] > 10 * abs(same)
    with pytest.raises(ValueError, match="bandwidth"):
        mmd_rbf(x, x, bandwidth=0.0)


def test_mmd_matches_closed_form_for_gaussians():
    # For N(0, I) and N(m, I) in d dimensions with kernel exp(−|a−b|²/(2h²)):
    # E k(x, x') = (h²/(h²+2))^{d/2} and E k(x, y) = (h²/(h²+2))^{d/2} exp(−|m|²/(2(h²+2))).
    d, h, m = 2, 1.5, torch.tensor([1.0, 0.5], dtype=torch.float64)
    x, y = gaussian(3000, d, seed=10), gaussian(3000, d, seed=11) + m
    scale = (h**2 / (h**2 + 2)) ** (d / 2)
    expected = 2 * scale * (1 - math.exp(-m.square().sum().item() / (2 * (h**2 + 2))))
    assert mmd_rbf(x, y, h) == pytest.approx(expected, rel=0.1)  # about 3 standard errors at n = 3000


def whitened(n: int, d: int, seed: int) -> np.ndarray:
    """n points with sample mean exactly 0 and unbiased sample covariance exactly I."""
    z = np.random.default_rng(seed).standard_normal((n, d))
    z -= z.mean(axis=0)
    return z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T


def test_frechet_distance_matches_closed_form_for_gaussian_features():
    # Σ_x = I, Σ_y = R diag(s²) Rᵀ: (Σ_x Σ_y)^½ = R diag(s) Rᵀ, so FD = |μ_x − μ_y|² + Σ (1 − s_k)².
    d = 5
    scales = np.array([0.5, 1.0, 1.5, 2.0, 3.0])
    rotation, _ = np.linalg.qr(np.random.default_rng(12).standard_normal((d, d)))
    mean = np.array([1.0, -2.0, 0.0, 0.5, 0.25])
    fx = whitened(400, d, seed=13)
    fy = whitened(300, d, seed=14) @ (rotation * scales).T + mean
    expected = mean @ mean + np.sum((1 - scales) ** 2)
    assert frechet_distance(fx, fy) == pytest.approx(expected, rel=1e-8)
    assert frechet_distance(torch.as_tensor(fx), torch.as_tensor(fx)) == pytest.approx(0.0, abs=1e-8)


def test_frechet_distance_handles_singular_covariances():
    # rank-deficient features (the last two coordinates always zero): still finite and exact
    fx = np.hstack([whitened(200, 3, seed=15), np.zeros((200, 2))])
    fy = fx + np.array([1.0, 0.0, 0.0, 0.0, 0.0])
    assert frechet_distance(fx, fy) == pytest.approx(1.0, abs=1e-4)


def test_endpoint_rmse_on_known_values():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    reference = torch.tensor([[1.0, 0.0], [0.0, 4.0]])
    assert endpoint_rmse(x, reference) == pytest.approx(math.sqrt((0 + 4 + 9 + 0) / 4))
    assert endpoint_rmse(x, x) == 0.0
    with pytest.raises(ValueError, match="same non-empty shape"):
        endpoint_rmse(x, reference[:1])
