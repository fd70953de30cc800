"""The shipped digits denoiser: its settings, its sha256-checked loader and its builder.

The file lives with every shipped weight under the one manifest of ``adaptstep.nn.weights``, which also holds the
command that checks and rebuilds them (``python -m adaptstep.nn.weights``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from adaptstep.diffusion.networks import NeuralDenoiser
from adaptstep.diffusion.training import load_denoiser, train_denoiser
from adaptstep.nn.data import DIGITS_SPLIT
from adaptstep.nn.weights import WEIGHTS_DIR, record, verified_path

DENOISER_FILES = {"digits": "digits/denoiser.pt"}
DENOISER_SETTINGS = {
    "digits": dict(data="digits", steps=24_000, batch_size=256, lr=1e-3, schedule="linear", seed=0,
                   width=128, depth=3, ema_decay=0.999),
}


def pretrained_denoiser(name: str = "digits", device: str | torch.device = "auto",
                        folder: str | Path = WEIGHTS_DIR) -> NeuralDenoiser:
    """A shipped ``NeuralDenoiser``, sha256-checked, in eval mode.

    Args:
        name: One of ``DENOISER_FILES``.
        device: The device; ``"auto"`` picks one.
        folder: The weights folder.

    Raises:
        ValueError: If ``name`` is not in ``DENOISER_FILES``.
    """
    if name not in DENOISER_FILES:
        raise ValueError(f"name must be one of {sorted(DENOISER_FILES)}, got {name!r}")
    return load_denoiser(verified_path(DENOISER_FILES[name], folder), device=device)


def build_denoiser(relative: str, out: Path, progress: bool) -> dict:
    """The ``adaptstep.nn.weights`` builder of a shipped denoiser, trained with its ``DENOISER_SETTINGS``.

    Args:
        relative: The file's path under the weights folder (a ``DENOISER_FILES`` value).
        out (Path): The folder to build into.
        progress: Whether to show training progress.

    Returns:
        The manifest record of the built file.
    """
    name = {file: name for name, file in DENOISER_FILES.items()}[relative]
    settings = DENOISER_SETTINGS[name]
    path = train_denoiser(out=out / Path(relative).parent, device="cpu", progress=progress, overwrite=True,
                          **settings)
    model = load_denoiser(path, device="cpu")
    metadata = model.metadata
    return record(
        path, model, kind="denoiser", name=name, function=f"{train_denoiser.__module__}.{train_denoiser.__name__}",
        arguments={**settings, "device": "cpu"}, train_split=DIGITS_SPLIT, train_size=metadata["train_size"],
        final_loss=metadata["final_loss"], seconds=metadata["seconds"],
    )
