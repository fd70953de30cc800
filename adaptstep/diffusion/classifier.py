"""A small MLP classifier of the 8×8 digits whose penultimate layer gives features for the Fréchet distance.

Architecture: 64 → 256 → ``FEATURE_DIM`` → 10 with SiLU activations, trained on the digits training
split (``adaptstep.diffusion.data``) by full-batch Adam with cross-entropy, weight decay and
Gaussian input noise (std ``input_noise``) so that slightly imperfect samples still get sensible
features. ``features(x)`` is the activation of the ``FEATURE_DIM``-unit layer.
"""

import math
from pathlib import Path

import torch
from torch import nn

from adaptstep.diffusion.data import load_dataset
from adaptstep.diffusion.device import resolve_device
from adaptstep.io import atomic_path

PIXELS = 64
CLASSES = 10
HIDDEN_DIM = 256
FEATURE_DIM = 64


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
    """A ``DigitClassifier`` trained on the digits training split; returned in eval mode."""
    if not (isinstance(steps, int) and steps > 0):
        raise ValueError(f"steps must be an int > 0, got {steps!r}")
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


@torch.no_grad()
def accuracy(model: DigitClassifier, x: torch.Tensor, labels: torch.Tensor) -> float:
    """Fraction of rows of ``x`` whose most likely class equals ``labels``."""
    predictions = model(x).argmax(dim=1).cpu()
    return (predictions == labels.cpu()).float().mean().item()


def save_classifier(model: DigitClassifier, path: str | Path) -> Path:
    """Write the weights to ``path`` atomically; returns ``path``."""
    path = Path(path)
    state = {key: value.detach().cpu() for key, value in model.state_dict().items()}
    with atomic_path(path) as temporary:
        torch.save(state, temporary)
    return path


def load_classifier(path: str | Path, device: str | torch.device = "auto") -> DigitClassifier:
    """The ``DigitClassifier`` saved at ``path``, in eval mode with gradients off."""
    model = DigitClassifier()
    model.load_state_dict(torch.load(Path(path), map_location="cpu", weights_only=True))
    return model.to(resolve_device(device)).eval().requires_grad_(False)
