"""Distribution metrics of sampler endpoints against fixed reference data, identical for every controller.

``distribution_metrics(model)`` builds, once per model name, a ``DistributionMetrics`` holding:

- reference points: for ``gmm-2d`` / ``gmm-64d`` ``REFERENCE_SIZE`` exact samples of p_{t_min} (the
  distribution the PF-ODE endpoints follow) drawn with ``REFERENCE_SEED``; for ``digits`` (the
  pretrained denoiser) or a ``denoiser.pt`` trained on a data set, that set's held-out split in the
  training scaling (all 360 held-out digits; ``REFERENCE_SIZE`` points of a synthetic set);
- sliced Wasserstein-2 with ``PROJECTIONS`` directions from ``PROJECTION_SEED`` (the same directions
  on every call), the unbiased RBF MMD² with the bandwidth fixed once by the median heuristic on the
  reference, and for digits the Fréchet distance in the features of the pretrained digit classifier,
  the reference features computed once.

``metrics(samples)`` returns ``{"sw2", "mmd", "frechet"}`` (``None`` where a metric is not defined
for the model; ``inf`` for every defined metric when a sample is not finite).
"""

from __future__ import annotations

import copy
import functools
import math
from pathlib import Path

import torch
from threadpoolctl import ThreadpoolController

from adaptstep.diffusion.metrics import frechet_distance, median_bandwidth
from adaptstep.diffusion.training import load_denoiser
from adaptstep.nn.classifier import DigitClassifier, pretrained_classifier
from adaptstep.nn.data import TRAINING_DATASETS, load_dataset
from adaptstep.nn.gmm import gmm_2d, gmm_64d

METRICS = ("sw2", "mmd", "frechet")
MIXTURES = {"gmm-2d": gmm_2d, "gmm-64d": gmm_64d}
MODELS = (*MIXTURES, "digits")
REFERENCE_SIZE = 2000
REFERENCE_SEED = 2**31 - 1  # far from the small noise seeds of the env, so reference and x_T never share draws
PROJECTIONS = 256
PROJECTION_SEED = 0


@functools.cache
def _threadpools() -> ThreadpoolController:
    """The BLAS/OpenMP libraries loaded so far (numpy's and scipy's OpenBLAS: metrics imports scipy)."""
    return ThreadpoolController()


def _rbf_sum(a: torch.Tensor, b: torch.Tensor, bandwidth: float, block: int = 1024) -> float:
    """Σ_ij exp(−|a_i − b_j|² / (2h²)), in row blocks of ``a`` to bound memory."""
    return sum(torch.exp(-torch.cdist(rows, b).square() / (2 * bandwidth**2)).sum().item() for rows in a.split(block))


def _quantiles(sorted_rows: torch.Tensor, size: int) -> torch.Tensor:
    """Each row's empirical quantile function at the levels (k + ½)/size, k < size: sample j of n sits at
    level (j + ½)/n, linear in between and constant beyond the end samples (as ``sliced_wasserstein2``)."""
    n = sorted_rows.shape[1]
    levels = (torch.arange(size, dtype=torch.float64) + 0.5) / size
    position = torch.clamp(levels * n - 0.5, 0, n - 1)
    lower = torch.clamp(position.floor().long(), max=n - 2)
    return torch.lerp(sorted_rows.index_select(1, lower), sorted_rows.index_select(1, lower + 1), position - lower)


class DistributionMetrics:
    """SW₂, MMD² and, with a classifier, the Fréchet distance between a batch of samples and a fixed reference.

    MMD² uses the RBF kernel with bandwidth h = ``median_bandwidth(reference)``; the Fréchet distance is taken in the
    features of a CPU copy of the classifier.

    The values equal (to rounding) ``metrics.sliced_wasserstein2(samples, reference, projections,
    torch.Generator().manual_seed(projection_seed))``, ``metrics.mmd_rbf(samples, reference, h)`` and
    ``metrics.frechet_distance`` of the features; everything that depends on the reference alone (its
    sorted projections, its kernel sum, its features) is computed once, so a call costs O(n·m), not O(m²).

    Args:
        reference: The reference points, shape (m ≥ 2, d).
        classifier: The digit classifier whose features the Fréchet distance uses; None: no Fréchet distance.
        projections: The number of SW₂ directions.
        projection_seed: The seed of the directions.

    Raises:
        ValueError: If ``reference`` is not (m ≥ 2, d) or ``projections`` is not an int > 0.
    """

    def __init__(self, reference: torch.Tensor, classifier: DigitClassifier | None = None,
                 projections: int = PROJECTIONS, projection_seed: int = PROJECTION_SEED) -> None:
        reference = torch.as_tensor(reference).detach().to("cpu", torch.float64)
        if reference.ndim != 2 or len(reference) < 2:
            raise ValueError(f"reference must have shape (n, d) with n >= 2, got {tuple(reference.shape)}")
        if not (isinstance(projections, int) and projections > 0):
            raise ValueError(f"projections must be an int > 0, got {projections!r}")
        self.reference, self.projections, self.projection_seed = reference, projections, projection_seed
        size = len(reference)
        generator = torch.Generator().manual_seed(projection_seed)
        directions = torch.randn(projections, reference.shape[1], generator=generator, dtype=torch.float64)
        self._directions = directions / directions.norm(dim=1, keepdim=True)
        self._reference_quantiles = {size: torch.sort(self._directions @ reference.T, dim=1).values}
        self.bandwidth = median_bandwidth(reference)
        self._reference_kernel = (_rbf_sum(reference, reference, self.bandwidth) - size) / (size * (size - 1))
        self.classifier = None if classifier is None else copy.deepcopy(classifier).to("cpu")
        self.reference_features = None if classifier is None else self._features(reference)

    @property
    def dim(self) -> int:
        """The points' dimension d."""
        return self.reference.shape[1]

    def _features(self, x: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return self.classifier.features(x.to(torch.float32)).to(torch.float64)

    def sliced_wasserstein2(self, samples: torch.Tensor) -> float:
        """SW₂ over the fixed directions; for n ≠ m both quantile functions are compared at N = max(n, m) levels."""
        n, m = len(samples), len(self.reference)
        size = max(n, m)
        if size not in self._reference_quantiles:
            self._reference_quantiles[size] = _quantiles(self._reference_quantiles[m], size)
        sample_sorted = torch.sort(self._directions @ samples.T, dim=1).values
        sample_quantiles = sample_sorted if n == size else _quantiles(sample_sorted, size)
        return math.sqrt(torch.mean((sample_quantiles - self._reference_quantiles[size]) ** 2).item())

    def mmd(self, samples: torch.Tensor) -> float:
        """Unbiased MMD² (Gretton et al. 2012) against the reference.

        Σ_{i≠j} k(x_i, x_j)/(n(n−1)) + Σ_{i≠j} k(y_i, y_j)/(m(m−1)) − 2 Σ_ij k(x_i, y_j)/(nm), y the reference."""
        n, m = len(samples), len(self.reference)
        within = (_rbf_sum(samples, samples, self.bandwidth) - n) / (n * (n - 1))
        return within + self._reference_kernel - 2 * _rbf_sum(samples, self.reference, self.bandwidth) / (n * m)

    def metrics(self, samples: torch.Tensor) -> dict[str, float | None]:
        """``sw2``, ``mmd`` and ``frechet`` (None without a classifier) of ``samples`` of shape (n ≥ 2, d).

        Returns:
            The metrics; ``inf`` for every defined one when a sample is not finite.

        Raises:
            ValueError: If ``samples`` does not have shape (n ≥ 2, d).
        """
        samples = torch.as_tensor(samples).detach().to("cpu", torch.float64)
        if samples.ndim != 2 or len(samples) < 2 or samples.shape[1] != self.dim:
            raise ValueError(f"samples must have shape (n, {self.dim}) with n >= 2, got {tuple(samples.shape)}")
        defined = METRICS if self.classifier is not None else METRICS[:2]
        if not bool(torch.isfinite(samples).all()):
            return {name: (math.inf if name in defined else None) for name in METRICS}
        # The matrices are small (at most 64 × 64 for the Fréchet distance): a multi-threaded BLAS only
        # contends with the caller's threads (48 ms instead of 10 ms per digits call on 2 busy cores).
        with _threadpools().limit(limits=1, user_api="blas"):
            return {
                "sw2": self.sliced_wasserstein2(samples),
                "mmd": self.mmd(samples),
                "frechet": None if self.classifier is None
                else frechet_distance(self._features(samples), self.reference_features),
            }

    __call__ = metrics


def _dataset_reference(data: str) -> torch.Tensor:
    """The held-out split of ``data``: all of it for digits, ``REFERENCE_SIZE`` points of a synthetic set."""
    size = None if data == "digits" else REFERENCE_SIZE
    return load_dataset(data, n=size, seed=REFERENCE_SEED, split="held-out")[0]


def _for_dataset(data: str) -> DistributionMetrics:
    classifier = pretrained_classifier(device="cpu") if data == "digits" else None
    return DistributionMetrics(_dataset_reference(data), classifier)


@functools.lru_cache(maxsize=16)
def distribution_metrics(model: str) -> DistributionMetrics:
    """The distribution metrics of a sampler model, cached per name.

    Args:
        model: One of ``MODELS`` or the path of a ``denoiser.pt`` whose metadata names its training data set
            (``train_denoiser`` records it as ``data``).

    Raises:
        ValueError: If ``model`` is unknown or its metadata names no known data set.
    """
    if model in MIXTURES:
        mixture = MIXTURES[model](device="cpu")
        generator = torch.Generator().manual_seed(REFERENCE_SEED)
        return DistributionMetrics(mixture.sample_marginal(REFERENCE_SIZE, mixture.schedule.t_min, generator))
    if model == "digits":
        return _for_dataset("digits")
    if isinstance(model, (str, Path)) and Path(model).is_file():
        data = load_denoiser(model, device="cpu").metadata.get("data")
        if data not in TRAINING_DATASETS:
            raise ValueError(f"the metadata 'data' of {model} must be one of {list(TRAINING_DATASETS)}, got {data!r}")
        return _for_dataset(data)
    raise ValueError(f"model must be one of {list(MODELS)} or a denoiser.pt file, got {model!r}")
