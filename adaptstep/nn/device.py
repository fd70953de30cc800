"""Device selection for the diffusion package."""

import torch


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The torch device: ``"auto"`` gives CUDA when available, else CPU; anything else goes to ``torch.device``.

    Raises:
        ValueError: If ``device`` names no torch device.
    """
    if isinstance(device, str) and device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"device must be 'auto' or a torch device such as 'cpu' or 'cuda', got {device!r}") from error
