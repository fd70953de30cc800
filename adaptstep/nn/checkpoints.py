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


def read_checkpoint(path: str | Path, what: str = "model") -> dict:
    """The dict saved at ``path`` (``torch.load``, weights only).

    Args:
        path: The checkpoint file.
        what: The kind of checkpoint, for the errors.

    Raises:
        FileNotFoundError: If there is no file at ``path``.
        ValueError: If the file is corrupt, truncated or holds no dict, naming it.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} checkpoint at {path}")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # zip, pickle and torch raise several types for a damaged file
        raise ValueError(f"{path} is not a readable {what} checkpoint (corrupt or truncated?): "
                         f"{type(error).__name__}; restore it or retrain") from None
    if not isinstance(checkpoint, dict):
        raise ValueError(f"{path} is not a {what} checkpoint: it holds a {type(checkpoint).__name__}")
    return checkpoint


def load_checkpoint(path: str | Path, build: Callable[[dict], nn.Module], what: str,
                    device: str | torch.device = "auto") -> nn.Module:
    """The model ``build(config)`` with the weights saved at ``path``, in eval mode with gradients off.

    Args:
        path: The checkpoint file (``save_checkpoint``'s).
        build: Builds the model from the checkpoint's config.
        what: The kind of checkpoint, for the errors.
        device: The torch device, ``"auto"`` for ``resolve_device``'s choice.

    Returns:
        The model on ``device``; its metadata is ``model.metadata``.

    Raises:
        FileNotFoundError: If there is no file at ``path``.
        ValueError: If the file is unreadable or its weights do not fit the model built from its config.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} checkpoint at {path}")
    checkpoint = read_checkpoint(path, what)
    try:
        model = build(checkpoint["config"])
        model.load_state_dict(checkpoint["state_dict"])
        model.metadata = checkpoint["metadata"]
    except (KeyError, TypeError, RuntimeError) as error:
        raise ValueError(f"{path} is not a {what} checkpoint of this version ({type(error).__name__}: "
                         f"{str(error).splitlines()[0] if str(error) else ''}); retrain it") from None
    return model.to(resolve_device(device)).eval().requires_grad_(False)
