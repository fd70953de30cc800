"""The outcome of a budgeted generation method, batched over generations (one per seed)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class SearchResult:
    """Per generation g: the selected sample ``x0[g]``, its verifier ``reward[g]``, the denoiser evaluations
    ``nfe[g]`` (never above the budget) and the verifier calls ``verifier_calls[g]`` (counted apart).
    ``trace`` holds per-method arrays, e.g. ``quotas`` (generations, steps + 1) or ``particles``."""

    method: str
    x0: torch.Tensor
    reward: np.ndarray
    nfe: np.ndarray
    verifier_calls: np.ndarray
    trace: dict[str, np.ndarray] = field(default_factory=dict)
