"""Checkpoints of small torch models: config, CPU weights and metadata in one file, written atomically."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

from adaptstep.io import atomic_path
from adaptstep.nn.device import resolve_device


def save_checkpoint(model: nn.Module, config: dict, metadata: dict, path: str | Path) -> Path:
    """Write ``config``, the weights (on the CPU) and ``metadata`` to ``path`` atomically; returns ``path``."""
    path = Path(path)
    checkpoint = {
        "config": config,
        "state_dict": {key: value.detach().cpu() for key, value in model.state_dict().items()},
        "metadata": metadata,
    }
    with atomic_path(path) as temporary:
        torch.save(checkpoint, temporary)
    return path


def load_checkpoint(path: str | Path, build: Callable[[dict], nn.Module], what: str,
                    device: str | torch.device = "auto") -> nn.Module:
    """The model ``build(config)`` with the weights saved at ``path``, on ``device``, in eval mode with gradients
    off; its metadata is ``model.metadata``. ``what`` names the kind of checkpoint in the error for a missing file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} checkpoint at {path}")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    model = build(checkpoint["config"])
    model.load_state_dict(checkpoint["state_dict"])
    model.metadata = checkpoint["metadata"]
    return model.to(resolve_device(device)).eval().requires_grad_(False)
