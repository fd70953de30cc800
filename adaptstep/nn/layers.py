"""Network building blocks shared by the families' models."""

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """h + W2 SiLU(W1 SiLU(LayerNorm h) + E c), with W2 zero-initialised (the block starts as the identity).

    Args:
        width: The width of h and of the condition c.
    """

    def __init__(self, width: int) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(width)
        self.inner = nn.Linear(width, width)
        self.condition = nn.Linear(width, width)
        self.outer = nn.Linear(width, width)
        nn.init.zeros_(self.outer.weight)
        nn.init.zeros_(self.outer.bias)

    def forward(self, h: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """The block on h (batch, width) with condition embedding c (batch, width)."""
        z = self.inner(nn.functional.silu(self.norm(h))) + self.condition(c)
        return h + self.outer(nn.functional.silu(z))
