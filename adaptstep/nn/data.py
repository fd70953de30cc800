"""Small real and synthetic data sets for training generative models and classifiers, as float32 tensors.

- ``digits``: scikit-learn's 8×8 handwritten digits (1797 images, 64-d), pixels 0…16 mapped
  linearly to [−1, 1], with labels 0…9. A fixed split (seed ``SPLIT_SEED``, independent of the
  ``seed`` argument) keeps ``DIGITS_HELD_OUT`` images out of training.
- ``two-moons``: ``sklearn.datasets.make_moons`` with noise ``MOONS_NOISE``, standardised per
  coordinate with the population mean and standard deviation of the noise-free moons (below),
  with the moon (0 or 1) as label.
- ``checkerboard``: uniform on the 8 dark cells of a 4×4 checkerboard covering [−1, 1]²
  (cell (i, j) is dark when i + j is even), no labels.

Synthetic sets draw fresh points from ``seed``; their ``"held-out"`` split uses a separate random
stream of the same seed, so it never repeats training points.
"""

import math

import numpy as np
import torch

TRAINING_DATASETS = ("digits", "two-moons", "checkerboard")
SPLITS = ("train", "held-out")
SPLIT_SEED = 0
DIGITS_HELD_OUT = 360
DIGITS_SPLIT = f"sklearn digits minus {DIGITS_HELD_OUT} held-out images (permutation seed {SPLIT_SEED})"
SYNTHETIC_DEFAULT_SIZE = 10_000
MOONS_NOISE = 0.1
# make_moons puts half the points on the outer arc (cos θ, sin θ) and half on the inner arc
# (1 − cos θ, ½ − sin θ), θ ∈ [0, π]. Averaging over θ: E[x] = ½, E[y] = ¼,
# Var x = ¾ and Var y = 9/16 − 1/π, each plus the noise variance.
MOONS_MEAN = (0.5, 0.25)
MOONS_STD = (math.sqrt(0.75 + MOONS_NOISE**2), math.sqrt(9 / 16 - 1 / math.pi + MOONS_NOISE**2))


def load_dataset(
    name: str, n: int | None = None, seed: int = 0, split: str = "train"
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """One of ``TRAINING_DATASETS`` as ``(x, labels)``.

    Args:
        name: ``"digits"``, ``"two-moons"`` or ``"checkerboard"``.
        n: Points to return (> 0). For ``digits`` None gives the whole split and a smaller ``n`` a random subset
            drawn with ``seed``; for synthetic sets None draws ``SYNTHETIC_DEFAULT_SIZE`` points.
        seed: Seed of the subset or of the synthetic points.
        split: ``"train"`` or ``"held-out"``.

    Returns:
        x float32 of shape (n, d) and labels int64 of shape (n,), or None for ``checkerboard``.

    Raises:
        ValueError: If ``name``, ``split`` or ``n`` is out of range.
    """
    if name not in TRAINING_DATASETS:
        raise ValueError(f"name must be one of {list(TRAINING_DATASETS)}, got {name!r}")
    if split not in SPLITS:
        raise ValueError(f"split must be one of {list(SPLITS)}, got {split!r}")
    if n is not None and not (isinstance(n, (int, np.integer)) and n > 0):
        raise ValueError(f"n must be None or an int > 0, got {n!r}")
    if name == "digits":
        return _digits(n, seed, split)
    rng = np.random.default_rng([seed, SPLITS.index(split)])
    size = SYNTHETIC_DEFAULT_SIZE if n is None else int(n)
    if name == "two-moons":
        from sklearn.datasets import make_moons  # here: sklearn costs ~0.8 s to import, which every command paid

        points, labels = make_moons(size, noise=MOONS_NOISE, random_state=int(rng.integers(2**31)))
        points = (points - np.asarray(MOONS_MEAN)) / np.asarray(MOONS_STD)
        return torch.as_tensor(points, dtype=torch.float32), torch.as_tensor(labels, dtype=torch.int64)
    return torch.as_tensor(_checkerboard(size, rng), dtype=torch.float32), None


def _digits(n: int | None, seed: int, split: str) -> tuple[torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits  # here: as make_moons

    digits = load_digits()
    order = np.random.default_rng(SPLIT_SEED).permutation(len(digits.target))
    held_out = order[:DIGITS_HELD_OUT]
    indices = np.sort(order[DIGITS_HELD_OUT:] if split == "train" else held_out)
    if n is not None:
        if n > len(indices):
            raise ValueError(f"n must be at most {len(indices)} for the digits {split} split, got {n}")
        indices = np.sort(np.random.default_rng(seed).choice(indices, size=int(n), replace=False))
    pixels = digits.data[indices] / 8.0 - 1.0
    return torch.as_tensor(pixels, dtype=torch.float32), torch.as_tensor(digits.target[indices], dtype=torch.int64)


def _checkerboard(n: int, rng: np.random.Generator) -> np.ndarray:
    """n points uniform on the dark cells (i + j even) of the 4×4 board of side-0.5 cells on [−1, 1]²."""
    cell = rng.integers(8, size=n)
    row = cell // 2
    column = 2 * (cell % 2) + row % 2  # the two dark columns of row i are i mod 2 and i mod 2 + 2
    corner = np.stack([column, row], axis=1) * 0.5 - 1.0
    return corner + 0.5 * rng.random((n, 2))
