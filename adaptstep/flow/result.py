"""The outcome of a budgeted generation method, batched over generations (one per seed)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch


@dataclass
class SearchResult:
    """What a budgeted generation method returns, one entry per generation g.

    Args:
        method: The method's name.
        x0: The selected samples, ``x0[g]``.
        reward: Their verifier rewards.
        nfe: The denoiser evaluations of each generation (never above the budget).
        verifier_calls: The verifier calls of each generation (counted apart).
        trace: Per-method arrays, e.g. ``quotas`` (generations, steps + 1) or ``particles``.
    """

    method: str
    x0: torch.Tensor
    reward: np.ndarray
    nfe: np.ndarray
    verifier_calls: np.ndarray
    trace: dict[str, np.ndarray] = field(default_factory=dict)
