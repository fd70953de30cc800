"""Sample-quality metrics: sliced Wasserstein-2, kernel MMD, Fréchet distance and endpoint RMSE.

The module also holds the per-sample statistics the sampler's tables pool (per-sample endpoint errors, mode
switches, the pooled RMSE with a bootstrap CI). Each distance takes point sets of shape (n, d) as torch tensors or
numpy arrays and returns a Python float; computations run in float64 (torch metrics on the device of the first
argument).
"""

import math
import warnings
from collections.abc import Callable

import numpy as np
import scipy.linalg
import torch

Points = torch.Tensor | np.ndarray


def _points(x: Points, name: str, device: torch.device | None = None) -> torch.Tensor:
    x = torch.as_tensor(x, device=device).to(torch.float64)
    if x.ndim != 2 or len(x) < 2:
        raise ValueError(f"{name} must have shape (n, d) with n >= 2, got {tuple(x.shape)}")
    return x


def _pair(x: Points, y: Points) -> tuple[torch.Tensor, torch.Tensor]:
    x = _points(x, "x")
    y = _points(y, "y", device=x.device)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x and y must have the same dimension, got {x.shape[1]} and {y.shape[1]}")
    return x, y


def _quantiles(sorted_values: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
    """Empirical quantile function of each row at ``levels``: sample k of n sits at level (k + ½)/n,
    linear in between and constant beyond the end samples."""
    n = sorted_values.shape[1]
    position = torch.clamp(levels * n - 0.5, 0, n - 1)
    lower = torch.clamp(position.floor().long(), max=n - 2)
    weight = position - lower
    return (1 - weight) * sorted_values[:, lower] + weight * sorted_values[:, lower + 1]


def sliced_wasserstein2(
    x: Points, y: Points, projections: int = 256, generator: torch.Generator | None = None
) -> float:
    """Sliced 2-Wasserstein distance SW₂ = (E_u W₂²(u·x, u·y))^½, u uniform on the unit sphere.

    The expectation is a Monte-Carlo mean over random directions. The 1-D W₂² is the
    mean squared difference of sorted projections when n_x = n_y; otherwise both empirical
    quantile functions are evaluated at the levels (k + ½)/N, N = max(n_x, n_y), with linear
    interpolation, which approximates ∫₀¹ (F⁻¹(q) − G⁻¹(q))² dq.

    Args:
        x: The first point set, shape (n_x, d).
        y: The second point set, shape (n_y, d).
        projections: The number of directions.
        generator: The CPU generator drawing the directions; None: one seeded with 0, so repeated calls agree.

    Raises:
        ValueError: If the point sets' shapes do not fit or ``projections`` is not an int > 0.
    """
    x, y = _pair(x, y)
    if not (isinstance(projections, int) and projections > 0):
        raise ValueError(f"projections must be an int > 0, got {projections!r}")
    generator = torch.Generator().manual_seed(0) if generator is None else generator
    directions = torch.randn(projections, x.shape[1], generator=generator, dtype=torch.float64).to(x.device)
    directions /= directions.norm(dim=1, keepdim=True)
    x_sorted = torch.sort(directions @ x.T, dim=1).values  # (projections, n_x)
    y_sorted = torch.sort(directions @ y.T, dim=1).values
    if len(x) != len(y):
        size = max(len(x), len(y))
        levels = (torch.arange(size, dtype=torch.float64, device=x.device) + 0.5) / size
        x_sorted, y_sorted = _quantiles(x_sorted, levels), _quantiles(y_sorted, levels)
    return math.sqrt(torch.mean((x_sorted - y_sorted) ** 2).item())


def median_bandwidth(reference: Points, max_points: int = 2000, seed: int = 0) -> float:
    """Median heuristic: the median pairwise Euclidean distance among reference points.

    Compute it once on reference data and pass it to ``mmd_rbf`` for every comparison, so all MMD values share one
    kernel.

    Args:
        reference: The reference points, shape (n, d).
        max_points: The most points used (chosen at random beyond that).
        seed: The seed of that choice.
    """
    reference = _points(reference, "reference")
    if len(reference) > max_points:
        chosen = torch.randperm(len(reference), generator=torch.Generator().manual_seed(seed))[:max_points]
        reference = reference[chosen.to(reference.device)]
    distances = torch.pdist(reference)
    return torch.median(distances).item()


def _kernel_sum(a: torch.Tensor, b: torch.Tensor, bandwidth: float, block: int = 2048) -> float:
    """Σ_ij exp(−|a_i − b_j|² / (2h²)), in row blocks to bound memory."""
    total = 0.0
    for start in range(0, len(a), block):
        squared = torch.cdist(a[start : start + block], b).square()
        total += torch.exp(-squared / (2 * bandwidth**2)).sum().item()
    return total


def mmd_rbf(x: Points, y: Points, bandwidth: float) -> float:
    """Unbiased squared MMD with the Gaussian kernel k(a, b) = exp(−|a − b|² / (2h²)), h = ``bandwidth``.

    MMD²_u = Σ_{i≠j} k(x_i, x_j) / (n(n−1)) + Σ_{i≠j} k(y_i, y_j) / (m(m−1)) − 2 Σ_ij k(x_i, y_j) / (nm)
    (Gretton et al. 2012). It can be slightly negative when the sets agree. h is fixed by the
    caller (e.g. ``median_bandwidth`` of reference data, computed once), never re-estimated per
    pair, so values are comparable across samplers.

    Args:
        x: The first point set, shape (n, d).
        y: The second point set, shape (m, d).
        bandwidth: The kernel bandwidth h, finite and > 0.

    Raises:
        ValueError: If the point sets' shapes do not fit or ``bandwidth`` is not finite and > 0.
    """
    x, y = _pair(x, y)
    if not (math.isfinite(bandwidth) and bandwidth > 0):
        raise ValueError(f"bandwidth must be finite and > 0, got {bandwidth!r}")
    n, m = len(x), len(y)
    within_x = (_kernel_sum(x, x, bandwidth) - n) / (n * (n - 1))  # the diagonal contributes k = 1 each
    within_y = (_kernel_sum(y, y, bandwidth) - m) / (m * (m - 1))
    return within_x + within_y - 2 * _kernel_sum(x, y, bandwidth) / (n * m)


def frechet_distance(features_x: Points, features_y: Points) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets (the FID formula, Heusel et al. 2017).

    FD = |μ_x − μ_y|² + Tr(Σ_x + Σ_y − 2 (Σ_x Σ_y)^½), with unbiased sample covariances.

    The matrix square root is ``scipy.linalg.sqrtm``; as in pytorch-fid, a singular product is
    retried with 1e-6·I added to both covariances, and an imaginary part from round-off (largest
    diagonal entry below 1e-3) is dropped.

    Args:
        features_x: The first feature set, shape (n, d).
        features_y: The second feature set, shape (m, d).

    Raises:
        ValueError: If the shapes do not fit or the square root has an imaginary part of 1e-3 or more.
    """
    x, y = _pair(features_x, features_y)
    x, y = x.cpu().numpy(), y.cpu().numpy()
    mean_x, mean_y = x.mean(axis=0), y.mean(axis=0)
    cov_x = np.atleast_2d(np.cov(x, rowvar=False))
    cov_y = np.atleast_2d(np.cov(y, rowvar=False))
    with warnings.catch_warnings():  # a singular product is expected for rank-deficient features
        warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
        root = scipy.linalg.sqrtm(cov_x @ cov_y)
        if not np.isfinite(root).all():
            offset = 1e-6 * np.eye(len(cov_x))
            root = scipy.linalg.sqrtm((cov_x + offset) @ (cov_y + offset))
    if np.iscomplexobj(root):
        largest = np.max(np.abs(np.diagonal(root).imag))
        if largest > 1e-3:
            raise ValueError(f"sqrtm(Σ_x Σ_y) has an imaginary part of {largest:.3g}: ill-conditioned covariances")
        root = root.real
    difference = mean_x - mean_y
    return float(difference @ difference + np.trace(cov_x) + np.trace(cov_y) - 2 * np.trace(root))


def endpoint_rmse(x: Points, reference: Points) -> float:
    """Root mean squared error over samples and dimensions, √(mean_ij (x_ij − ref_ij)²), between paired samples.

    Args:
        x: The samples, e.g. solver endpoints.
        reference: Their paired references (e.g. reference endpoints from the same noise), same shape.

    Raises:
        ValueError: If the shapes differ or are empty.
    """
    x = torch.as_tensor(x).to(torch.float64)
    reference = torch.as_tensor(reference, device=x.device).to(torch.float64)
    if x.shape != reference.shape or x.numel() == 0:
        shapes = f"{tuple(x.shape)} and {tuple(reference.shape)}"
        raise ValueError(f"x and reference must have the same non-empty shape, got {shapes}")
    return math.sqrt(torch.mean((x - reference) ** 2).item())


def sample_errors(x: Points, reference: Points) -> np.ndarray:
    """Each sample's endpoint error, the RMS over its dimensions √(mean_j (x_ij − ref_ij)²).

    Pooled over any set of samples, √(mean e_i²) is their ``endpoint_rmse``.

    Args:
        x: The samples, shape (n, d).
        reference: Their paired references, same shape.

    Returns:
        The errors as a float64 numpy array of shape (n,).

    Raises:
        ValueError: If the shapes differ, are empty or are not (n, d).
    """
    x = torch.as_tensor(x).to(torch.float64)
    reference = torch.as_tensor(reference, device=x.device).to(torch.float64)
    if x.shape != reference.shape or x.ndim != 2 or x.numel() == 0:
        raise ValueError(f"x and reference must have the same non-empty shape (n, d), got {tuple(x.shape)} and "
                         f"{tuple(reference.shape)}")
    return (x - reference).pow(2).mean(dim=1).sqrt().cpu().numpy()


def nearest_components(x: Points, centres: Points) -> np.ndarray:
    """The index of the nearest of ``centres`` to every sample of ``x``, by Euclidean distance.

    Args:
        x: The samples, shape (n, d).
        centres: The centres, shape (K, d).

    Raises:
        ValueError: If the shapes are not (n, d) and (K, d).
    """
    x = torch.as_tensor(x).to(torch.float64)
    centres = torch.as_tensor(centres, device=x.device).to(torch.float64)
    if x.ndim != 2 or centres.ndim != 2 or x.shape[1] != centres.shape[1]:
        raise ValueError(f"x (n, d) and centres (K, d) must share d, got {tuple(x.shape)} and {tuple(centres.shape)}")
    return torch.cdist(x, centres).argmin(dim=1).cpu().numpy()


def mode_switches(x: Points, reference: Points, centres: Points) -> np.ndarray:
    """Per sample, whether its nearest component differs from its reference's.

    Such a sample ends in another mode of a mixture than the exact ODE solution from the same noise.

    Args:
        x: The samples, shape (n, d).
        reference: Their paired references, same shape.
        centres: The mixture's component means, shape (K, d).
    """
    return nearest_components(x, centres) != nearest_components(reference, centres)


def _bootstrap(statistic: Callable[[np.ndarray], np.ndarray], size: int, resamples: int, seed: int) -> np.ndarray:
    """``statistic`` of ``resamples`` percentile-bootstrap resamples of ``size`` samples: it maps index rows
    (k, size) to k values; 100 rows at a time bound the memory at 100 × size."""
    rng, values = np.random.default_rng(seed), np.empty(resamples)
    for start in range(0, resamples, 100):
        stop = min(start + 100, resamples)
        values[start:stop] = statistic(rng.integers(0, size, (stop - start, size)))
    return values


def pooled_rmse(errors: np.ndarray, confidence: float = 0.95, resamples: int = 2000,
                seed: int = 0) -> tuple[float, float, float]:
    """The pooled RMSE √(mean e_i²) of per-sample errors and its percentile bootstrap interval.

    Args:
        errors: Per-sample errors (``sample_errors`` of every evaluation sample, pooled).
        confidence: The interval's confidence, in (0, 1).
        resamples: The bootstrap resamples (of samples).
        seed: The seed of numpy's ``default_rng``.

    Returns:
        (RMSE, lower, upper).

    Raises:
        ValueError: If ``errors`` is empty or ``confidence`` is outside (0, 1).
    """
    errors = np.asarray(errors, dtype=np.float64).ravel()
    if errors.size == 0 or not 0 < confidence < 1:
        raise ValueError(f"need errors and 0 < confidence < 1, got {errors.size} errors, confidence {confidence}")
    squares = errors**2
    means = _bootstrap(lambda index: squares[index].mean(axis=1), errors.size, resamples, seed)
    lower, upper = np.sqrt(np.quantile(means, [(1 - confidence) / 2, (1 + confidence) / 2]))
    return math.sqrt(squares.mean()), float(lower), float(upper)


def paired_ratio(errors: np.ndarray, baseline: np.ndarray, confidence: float = 0.95, resamples: int = 2000,
                 seed: int = 0) -> tuple[float, float, float]:
    """(ratio, lower, upper): √(mean e²) / √(mean b²) of two methods' per-sample errors on the same samples, with a
    percentile bootstrap CI resampling the samples jointly (NaN bounds when the samples do not pair)."""
    errors, baseline = np.asarray(errors, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    ratio = math.sqrt(float(np.mean(errors**2)) / float(np.mean(baseline**2)))
    if errors.shape != baseline.shape:
        return ratio, math.nan, math.nan
    values = _bootstrap(lambda index: np.sqrt((errors[index]**2).mean(axis=1) / (baseline[index]**2).mean(axis=1)),
                        errors.size, resamples, seed)
    lower, upper = np.quantile(values, [(1 - confidence) / 2, (1 + confidence) / 2])
    return ratio, float(lower), float(upper)
