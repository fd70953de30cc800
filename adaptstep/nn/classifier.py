"""Two classifiers of the 8×8 digits, trained on the digits training split (``adaptstep.nn.data``).

- ``DigitClassifier``: an MLP 64 → 256 → ``FEATURE_DIM`` → 10 with SiLU activations, trained by full-batch
  AdamW with cross-entropy, weight decay and Gaussian input noise (std ``input_noise``) so that slightly
  imperfect samples still get sensible features. ``features(x)`` is the activation of the
  ``FEATURE_DIM``-unit layer (features for the Fréchet distance; also the guidance reward).
- ``HeldOutDigitClassifier``: a small CNN on the image as 1×8×8 with ReLU activations, another seed and
  minibatch AdamW with random one-pixel shifts and input noise: a verifier built differently from the
  guidance classifier, so that samples which merely exploit the guidance classifier (reward hacking) do
  not score well on it.

Both ship pretrained (``adaptstep.nn.weights``): ``pretrained_classifier`` and ``pretrained_heldout_classifier``
load them, ``build_classifier`` and ``build_heldout_classifier`` retrain them with the recorded settings.
"""

import math
import time
from pathlib import Path

import torch
from torch import nn

from adaptstep.core.settings import require_int
from adaptstep.io import atomic_path
from adaptstep.nn.data import DIGITS_HELD_OUT, DIGITS_SPLIT, load_dataset
from adaptstep.nn.device import resolve_device
from adaptstep.nn.weights import WEIGHTS_DIR, record, verified_path

PIXELS = 64
SIDE = 8
CLASSES = 10
HIDDEN_DIM = 256
FEATURE_DIM = 64
CLASSIFIER_FILE = "classifier.pt"
HELDOUT_CLASSIFIER_FILE = "heldout_classifier.pt"
CLASSIFIER_SETTINGS = dict(seed=0, steps=600, lr=3e-3, weight_decay=1e-4, input_noise=0.1)
HELDOUT_CLASSIFIER_SETTINGS = dict(seed=1, steps=2000, batch_size=128, lr=2e-3, weight_decay=1e-4, input_noise=0.1)


class DigitClassifier(nn.Module):
    """Logits over the 10 digits for x of shape (batch, 64) in the data's [−1, 1] scaling."""

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Linear(PIXELS, HIDDEN_DIM), nn.SiLU(), nn.Linear(HIDDEN_DIM, FEATURE_DIM), nn.SiLU()
        )
        self.head = nn.Linear(FEATURE_DIM, CLASSES)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate-layer activations, shape (batch, ``FEATURE_DIM``)."""
        if x.ndim != 2 or x.shape[1] != PIXELS:
            raise ValueError(f"x must have shape (batch, {PIXELS}), got {tuple(x.shape)}")
        parameter = next(self.parameters())
        return self.body(x.to(device=parameter.device, dtype=parameter.dtype))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape (batch, 10)."""
        return self.head(self.features(x))


@torch.enable_grad()  # also when called under torch.no_grad()
def train_digit_classifier(
    seed: int = 0,
    steps: int = 600,
    lr: float = 3e-3,
    weight_decay: float = 1e-4,
    input_noise: float = 0.1,
    device: str | torch.device = "auto",
) -> DigitClassifier:
    """A ``DigitClassifier`` trained on the digits training split by full-batch AdamW; returned in eval mode.

    Args:
        seed: Seed of the initial weights and the input noise.
        steps: Full-batch optimiser steps (>= 1).
        lr: AdamW's learning rate.
        weight_decay: AdamW's weight decay.
        input_noise: Standard deviation of the Gaussian noise added to the inputs (>= 0).
        device: The torch device, ``"auto"`` for ``resolve_device``'s choice.

    Raises:
        ValueError: If ``steps`` is not an int >= 1 or ``input_noise`` is negative or not finite.
    """
    require_int("steps", steps)
    if not (math.isfinite(input_noise) and input_noise >= 0):
        raise ValueError(f"input_noise must be finite and >= 0, got {input_noise!r}")
    device = resolve_device(device)
    x, labels = load_dataset("digits", split="train")
    x, labels = x.to(device), labels.to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DigitClassifier().to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        noisy = x + input_noise * torch.randn(x.shape, generator=generator).to(device)
        loss = nn.functional.cross_entropy(model(noisy), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval().requires_grad_(False)


class HeldOutDigitClassifier(nn.Module):
    """Logits over the 10 digits for x of shape (batch, 64) in [−1, 1], by a CNN on the 1×8×8 image.

    conv 3×3 (32) → conv 3×3 (32) → max-pool 2 → conv 3×3 (64) → max-pool 2 → linear 256 → 128 → 10, ReLU.
    """

    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
            nn.Linear(64 * 2 * 2, 128), nn.ReLU(), nn.Linear(128, CLASSES),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape (batch, 10) for x of shape (batch, 64)."""
        if x.ndim != 2 or x.shape[1] != PIXELS:
            raise ValueError(f"x must have shape (batch, {PIXELS}), got {tuple(x.shape)}")
        parameter = next(self.parameters())
        return self.body(x.to(device=parameter.device, dtype=parameter.dtype).reshape(-1, 1, SIDE, SIDE))


def _shifted(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Each image of x (batch, 64) moved by a random shift in {−1, 0, 1}² pixels, the background (−1) filling in."""
    padded = nn.functional.pad(x.reshape(-1, SIDE, SIDE), (1, 1, 1, 1), value=-1.0)
    rows, columns = torch.randint(3, (2, len(x), 1, 1), generator=generator).to(x.device)
    pixels = torch.arange(SIDE, device=x.device)
    batch = torch.arange(len(x), device=x.device).reshape(-1, 1, 1)
    return padded[batch, rows + pixels.reshape(1, -1, 1), columns + pixels.reshape(1, 1, -1)].reshape(len(x), PIXELS)


@torch.enable_grad()  # also when called under torch.no_grad()
def train_heldout_classifier(
    seed: int = 1,
    steps: int = 2000,
    batch_size: int = 128,
    lr: float = 2e-3,
    weight_decay: float = 1e-4,
    input_noise: float = 0.1,
    device: str | torch.device = "auto",
) -> HeldOutDigitClassifier:
    """A ``HeldOutDigitClassifier`` trained on the digits training split; returned in eval mode.

    Minibatch AdamW (rows drawn with replacement) on randomly shifted, noised images; reproducible on the CPU from
    ``seed``.

    Args:
        seed: Seed of the initial weights, the minibatches, the shifts and the input noise.
        steps: Optimiser steps (>= 1).
        batch_size: Rows per minibatch (>= 1).
        lr: AdamW's learning rate.
        weight_decay: AdamW's weight decay.
        input_noise: Standard deviation of the Gaussian noise added to the inputs (>= 0).
        device: The torch device, ``"auto"`` for ``resolve_device``'s choice.

    Raises:
        ValueError: If ``steps`` or ``batch_size`` is not an int >= 1 or ``input_noise`` is negative or not finite.
    """
    require_int("steps", steps)
    require_int("batch_size", batch_size)
    if not (math.isfinite(input_noise) and input_noise >= 0):
        raise ValueError(f"input_noise must be finite and >= 0, got {input_noise!r}")
    device = resolve_device(device)
    x, labels = load_dataset("digits", split="train")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = HeldOutDigitClassifier().to(device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        rows = torch.randint(len(x), (batch_size,), generator=generator)
        batch = _shifted(x[rows], generator) + input_noise * torch.randn(batch_size, PIXELS, generator=generator)
        loss = nn.functional.cross_entropy(model(batch.to(device)), labels[rows].to(device))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return model.eval().requires_grad_(False)


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows of ``x`` whose most likely class (under ``model``'s logits) equals ``labels``."""
    predictions = model(x).argmax(dim=1).cpu()
    return (predictions == labels.cpu()).float().mean().item()


def save_classifier(model: nn.Module, path: str | Path) -> Path:
    """Write the weights of either classifier to ``path`` atomically; returns ``path``."""
    path = Path(path)
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    with atomic_path(path) as temporary:
        torch.save(state, temporary)
    return path


def _loaded(model: nn.Module, path: str | Path, device: str | torch.device) -> nn.Module:
    model.load_state_dict(torch.load(Path(path), map_location="cpu", weights_only=True))
    return model.to(resolve_device(device)).eval().requires_grad_(False)


def load_classifier(path: str | Path, device: str | torch.device = "auto") -> DigitClassifier:
    """The ``DigitClassifier`` saved at ``path``, in eval mode with gradients off."""
    return _loaded(DigitClassifier(), path, device)


def load_heldout_classifier(path: str | Path, device: str | torch.device = "auto") -> HeldOutDigitClassifier:
    """The ``HeldOutDigitClassifier`` saved at ``path``, in eval mode with gradients off."""
    return _loaded(HeldOutDigitClassifier(), path, device)


def pretrained_classifier(device: str | torch.device = "auto", folder: str | Path = WEIGHTS_DIR) -> DigitClassifier:
    """The shipped ``DigitClassifier`` (features for the digits Fréchet distance), in eval mode."""
    return load_classifier(verified_path(CLASSIFIER_FILE, folder), device=device)


def pretrained_heldout_classifier(device: str | torch.device = "auto",
                                  folder: str | Path = WEIGHTS_DIR) -> HeldOutDigitClassifier:
    """The shipped ``HeldOutDigitClassifier`` (the evaluation verifier, not used for guidance), in eval mode."""
    return load_heldout_classifier(verified_path(HELDOUT_CLASSIFIER_FILE, folder), device=device)


def _build(relative: str, kind: str, train, settings: dict, out: Path) -> dict:
    start = time.perf_counter()
    model = train(device="cpu", **settings)
    seconds = time.perf_counter() - start
    path = save_classifier(model, out / relative)
    train_x, train_labels = load_dataset("digits", split="train")
    test_x, test_labels = load_dataset("digits", split="held-out")
    with torch.no_grad():
        train_loss = nn.functional.cross_entropy(model(train_x), train_labels).item()
    return record(
        path, model, kind=kind, function=f"{train.__module__}.{train.__name__}",
        arguments={**settings, "device": "cpu"}, data="digits", train_split=DIGITS_SPLIT,
        test_split=f"the {DIGITS_HELD_OUT} held-out images", final_loss=train_loss,
        train_accuracy=accuracy(model, train_x, train_labels), test_accuracy=accuracy(model, test_x, test_labels),
        seconds=seconds,
    )


def build_classifier(relative: str, out: Path, progress: bool) -> dict:
    """The ``adaptstep.nn.weights`` builder of the shipped ``DigitClassifier`` (``CLASSIFIER_SETTINGS``)."""
    return _build(relative, "classifier", train_digit_classifier, CLASSIFIER_SETTINGS, out)


def build_heldout_classifier(relative: str, out: Path, progress: bool) -> dict:
    """The ``adaptstep.nn.weights`` builder of the shipped ``HeldOutDigitClassifier``.

    It trains with ``HELDOUT_CLASSIFIER_SETTINGS``.
    """
    return _build(relative, "heldout-classifier", train_heldout_classifier, HELDOUT_CLASSIFIER_SETTINGS, out)
