"""A DiT action head: a diffusion transformer over action chunks with AdaLN-Zero and cross-attention to context.

Tokens are the Tp noisy actions, x = Linear(a_t) + learned positional embedding. The conditioning vector
c = MLP(sinusoidal(1000·t)) + MLP(global) modulates every block with AdaLN-Zero (Peebles & Xie 2023, "Scalable
Diffusion Models with Transformers"): SiLU → Linear(D, 6D) gives shift/scale/gate for the self-attention and MLP
sub-layers, x ← x + gate · f(LN(x)·(1 + scale) + shift), with that Linear zero-initialised so every block starts as
the identity. Between them a pre-LayerNorm cross-attention sub-layer lets the action tokens read the context tokens
(x ← x + CrossAttn(LN(x), LN(context)), as PixArt-α conditions its DiT on text tokens). A final AdaLN (shift/scale)
and a zero-initialised Linear map the tokens to ε̂, so the head outputs exactly zero at initialisation.

For speed at batch 1 on a CPU, where the call count rather than the arithmetic sets the time, the blocks' and the
final layer's modulation Linears are stored as one Linear(D, (6·depth + 2)·D) (the same maps stacked), the
self-attention's q, k, v come from one fused Linear, and the context's cross-attention keys and values can be
computed once per sampling run (``context_memory``) instead of at every solver step.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

TIME_SCALE = 1000.0  # continuous t in (0, 1] → DDPM's discrete-step scale for the sinusoidal embedding


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10_000.0) -> torch.Tensor:
    """Sinusoidal embedding [cos(s·ω_k), sin(s·ω_k)] of s = 1000·t with ω_k = max_period^(−k/(dim/2)) (DiT/ADM).

    Args:
        t: Times, shape (B,).
        dim: The embedding's width (even).
        max_period: The longest period.
    """
    half = dim // 2
    frequencies = torch.exp(-math.log(max_period) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    angles = (TIME_SCALE * t.to(torch.float32))[:, None] * frequencies
    return torch.cat([torch.cos(angles), torch.sin(angles)], dim=1)


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """x·(1 + scale) + shift, with (B, D) shift and scale broadcast over the tokens of x (B, N, D)."""
    return torch.addcmul(shift[:, None], x, 1 + scale[:, None])


def split_heads(x: torch.Tensor, parts: int, heads: int) -> torch.Tensor:
    """(B, N, parts·D) → (parts, B, heads, N, D/heads).

    Args:
        x: Fused projections, shape (B, N, parts·D).
        parts: The projections fused (3 for q, k, v).
        heads: The attention heads.
    """
    batch, length = x.shape[:2]
    return x.reshape(batch, length, parts, heads, -1).permute(2, 0, 3, 1, 4)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, heads, N, D/heads) → (B, N, D)."""
    return x.transpose(1, 2).flatten(2)


class SelfAttention(nn.Module):
    """softmax(q kᵀ/√d) v over the action tokens, q, k, v from one fused projection.

    Args:
        width: The token width D.
        heads: The attention heads.
    """

    def __init__(self, width: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(width, 3 * width)
        self.out = nn.Linear(width, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Self-attention of the tokens x (B, N, D)."""
        query, key, value = split_heads(self.qkv(x), 3, self.heads)
        return self.out(merge_heads(F.scaled_dot_product_attention(query, key, value)))


class CrossAttention(nn.Module):
    """softmax(q kᵀ/√d) v of queries from the action tokens to keys and values of the context tokens.

    The keys and values come precomputed as ``memory`` (2, B, heads, N, D/heads), since the context is fixed over a
    sampling run.

    Args:
        width: The action tokens' width D.
        heads: The attention heads.
        context_dim: The context tokens' width.
    """

    def __init__(self, width: int, heads: int, context_dim: int) -> None:
        super().__init__()
        self.heads = heads
        self.query = nn.Linear(width, width)
        self.key_value = nn.Linear(context_dim, 2 * width)
        self.out = nn.Linear(width, width)

    def memory(self, context: torch.Tensor) -> torch.Tensor:
        """Keys and values (2, B, heads, N, D/heads) of the context tokens (B, N, context_dim)."""
        return split_heads(self.key_value(context), 2, self.heads)

    def forward(self, x: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """Cross-attention of the action tokens x (B, Tp, D) to the context's ``memory``."""
        query = split_heads(self.query(x), 1, self.heads)[0]
        return self.out(merge_heads(F.scaled_dot_product_attention(query, memory[0], memory[1])))


class DiTBlock(nn.Module):
    """One DiT block with AdaLN-Zero and cross-attention.

    x += gate₁·SelfAttn(modulate(LN x)); x += CrossAttn(LN x, LN context); x += gate₂·MLP(modulate(LN x)),
    with (shift, scale, gate) × 2 from the head's AdaLN-Zero modulation of c.

    Args:
        width: The token width D.
        heads: The attention heads.
        context_dim: The context tokens' width.
        mlp_ratio: The MLP's hidden width / D.
    """

    def __init__(self, width: int, heads: int, context_dim: int, mlp_ratio: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.attention = SelfAttention(width, heads)
        self.norm_cross = nn.LayerNorm(width, eps=1e-6)
        self.norm_context = nn.LayerNorm(context_dim, eps=1e-6)
        self.cross_attention = CrossAttention(width, heads, context_dim)
        self.norm2 = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        hidden = int(width * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(width, hidden), nn.GELU(approximate="tanh"), nn.Linear(hidden, width))

    def context_memory(self, context: torch.Tensor) -> torch.Tensor:
        """The cross-attention's keys and values of the (normalised) context tokens."""
        return self.cross_attention.memory(self.norm_context(context))

    def forward(self, x: torch.Tensor, modulation: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """The block on tokens x (B, Tp, D) with its modulation (B, 6, D) and the context's ``memory``."""
        shift1, scale1, gate1, shift2, scale2, gate2 = modulation.unbind(1)
        x = torch.addcmul(x, gate1[:, None], self.attention(modulate(self.norm1(x), shift1, scale1)))
        x = x + self.cross_attention(self.norm_cross(x), memory)
        return torch.addcmul(x, gate2[:, None], self.mlp(modulate(self.norm2(x), shift2, scale2)))


class DiTActionHead(nn.Module):
    """ε̂(a_t, t, condition) for action chunks (B, pred_horizon, action_dim).

    A chunk network of ``adaptstep.policies.action_diffusion``, called as ``head(x_t, t, {"tokens": (B, N,
    context_dim), "global": (B, global_dim)})``.

    Args:
        action_dim: The action's dimension.
        pred_horizon: The chunk's steps Tp.
        global_dim: The global condition's width.
        context_dim: The context tokens' width; None for ``width``.
        width: The token width D (even, divisible by ``heads``).
        depth: The DiT blocks.
        heads: The attention heads.
        mlp_ratio: The MLPs' hidden width / D.

    Raises:
        ValueError: If a size is not an int >= 1, or ``width`` is odd or not divisible by ``heads``.
    """

    def __init__(self, action_dim: int, pred_horizon: int, global_dim: int, context_dim: int | None = None,
                 width: int = 128, depth: int = 4, heads: int = 4, mlp_ratio: float = 4.0) -> None:
        super().__init__()
        for name, value in (("action_dim", action_dim), ("pred_horizon", pred_horizon), ("global_dim", global_dim),
                            ("width", width), ("depth", depth), ("heads", heads)):
            if not (isinstance(value, int) and not isinstance(value, bool) and value >= 1):
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if width % heads or width % 2:
            raise ValueError(f"width must be even and divisible by heads = {heads}, got {width}")
        context_dim = width if context_dim is None else context_dim
        self.action_dim, self.pred_horizon, self.global_dim, self.context_dim = (action_dim, pred_horizon,
                                                                                 global_dim, context_dim)
        self.width = width
        self.action_embedding = nn.Linear(action_dim, width)
        self.position = nn.Parameter(torch.randn(1, pred_horizon, width) * 0.02)
        self.time_mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.global_mlp = nn.Sequential(nn.Linear(global_dim, width), nn.SiLU(), nn.Linear(width, width))
        self.blocks = nn.ModuleList(DiTBlock(width, heads, context_dim, mlp_ratio) for _ in range(depth))
        self.modulation = nn.Linear(width, (6 * depth + 2) * width)  # every block's 6 and the final layer's 2
        self.final_norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.output = nn.Linear(width, action_dim)
        for layer in (self.modulation, self.output):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def context_memory(self, tokens: torch.Tensor) -> torch.Tensor:
        """Every block's cross-attention keys and values of the context ``tokens`` (B, N, context_dim).

        Pass the result as ``condition["memory"]`` to compute it once per sampling run instead of once per solver
        step.

        Returns:
            The keys and values, stacked as (depth, 2, B, heads, N, width/heads).

        Raises:
            ValueError: If ``tokens`` has the wrong shape.
        """
        if tokens.ndim != 3 or tokens.shape[2] != self.context_dim:
            raise ValueError(f"tokens must have shape (B, N, {self.context_dim}), got {tuple(tokens.shape)}")
        return torch.stack([block.context_memory(tokens) for block in self.blocks])

    def forward(self, x: torch.Tensor, t: torch.Tensor, condition: dict[str, torch.Tensor]) -> torch.Tensor:
        """ε̂ (B, pred_horizon, action_dim) of noisy chunks x at times t (B,).

        Args:
            x: Noisy chunks, shape (B, pred_horizon, action_dim).
            t: Times, shape (B,) or a scalar.
            condition: "global" (B, global_dim) and either "tokens" (B, N, context_dim) or their precomputed
                ``context_memory`` as "memory".

        Raises:
            ValueError: If a shape does not fit.
        """
        batch, global_condition = len(x), condition["global"]
        if x.shape[1:] != (self.pred_horizon, self.action_dim):
            raise ValueError(f"x must have shape (B, {self.pred_horizon}, {self.action_dim}), got {tuple(x.shape)}")
        if global_condition.shape != (batch, self.global_dim):
            raise ValueError(f"condition['global'] must have shape ({batch}, {self.global_dim}), "
                             f"got {tuple(global_condition.shape)}")
        memory = condition["memory"] if "memory" in condition else self.context_memory(condition["tokens"])
        if memory.shape[:3] != (len(self.blocks), 2, batch):
            raise ValueError(f"condition['tokens'] must hold {batch} rows to match x, got {memory.shape[2]}")
        t = torch.as_tensor(t, device=x.device).expand(batch)
        c = self.time_mlp(timestep_embedding(t, self.width)) + self.global_mlp(global_condition)
        modulation = self.modulation(F.silu(c)).unflatten(1, (-1, self.width))
        h = self.action_embedding(x) + self.position
        for index, (block, block_memory) in enumerate(zip(self.blocks, memory)):
            h = block(h, modulation[:, 6 * index: 6 * index + 6], block_memory)
        shift, scale = modulation[:, -2:].unbind(1)
        return self.output(modulate(self.final_norm(h), shift, scale))
