"""The shipped digits rectified flow: its settings, its sha256-checked loader and its builder.

The file lives with every shipped weight under the one manifest of ``adaptstep.nn.weights``, which also holds the
command that checks and rebuilds them (``python -m adaptstep.nn.weights``).
"""

from __future__ import annotations

from pathlib import Path

import torch

from adaptstep.flow.rectified import FlowNet, load_flow, save_flow, train_flow
from adaptstep.nn.data import DIGITS_SPLIT
from adaptstep.nn.weights import WEIGHTS_DIR, record, verified_path

FLOW_FILES = {"digits": "digits/flow.pt"}
FLOW_SETTINGS = {
    "digits": dict(data="digits", steps=30_000, batch_size=256, lr=1e-3, seed=0, width=128, depth=3,
                   ema_decay=0.999),
}


def pretrained_flow(name: str = "digits", device: str | torch.device = "auto",
                    folder: str | Path = WEIGHTS_DIR) -> FlowNet:
    """The shipped rectified-flow ``FlowNet`` ``name``, in eval mode.

    Args:
        name: One of ``FLOW_FILES``.
        device: The torch device, ``"auto"`` for ``resolve_device``'s choice.
        folder: The weights folder.

    Raises:
        ValueError: If ``name`` is unknown.
        RuntimeError: If the file is missing or fails its sha256 check.
    """
    if name not in FLOW_FILES:
        raise ValueError(f"name must be one of {sorted(FLOW_FILES)}, got {name!r}")
    return load_flow(verified_path(FLOW_FILES[name], folder), device=device)


def build_flow(relative: str, out: Path, progress: bool) -> dict:
    """The ``adaptstep.nn.weights`` builder of the shipped flow at ``relative`` (``FLOW_SETTINGS``)."""
    name = {file: name for name, file in FLOW_FILES.items()}[relative]
    settings = FLOW_SETTINGS[name]
    model = train_flow(device="cpu", progress=progress, **settings)
    path = save_flow(model, out / relative)
    metadata = model.metadata
    return record(
        path, model, kind="flow", name=name, function=f"{train_flow.__module__}.{train_flow.__name__}",
        arguments={**settings, "device": "cpu"}, train_split=DIGITS_SPLIT, train_size=metadata["train_size"],
        time_sampling=metadata["time_sampling"], final_loss=metadata["final_loss"], seconds=metadata["seconds"],
    )
