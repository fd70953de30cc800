"""Diffusion Policy's ConditionalUnet1D (Chi et al. 2023, ``model/diffusion/conditional_unet1d.py``).

1-D convolutions over the action chunk (batch, pred_horizon, action_dim). Every residual block is Conv1d → GroupNorm
→ Mish twice, with FiLM between them: h ← γ(c) ⊙ h + β(c), where c = [timestep embedding, global condition] and
(γ, β) = Linear(Mish(c)) per channel (``cond_predict_scale``). The chunk is halved in length after each level but the
last and doubled again on the way up, with skip connections (the full-resolution skip is unused, as in Chi et al.).
The timestep embedding is sinusoidal features of ``time_scale``·t (t the continuous diffusion time, so 100·t spans
Diffusion Policy's 100 training steps) → Linear → Mish → Linear.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def sinusoidal_embedding(x: torch.Tensor, dim: int) -> torch.Tensor:
    """(B,) → (B, dim): [sin(x ω_k), cos(x ω_k)] with ω_k = 10000^(−k/(dim/2 − 1)) (Vaswani et al. 2017).

    Args:
        x: The scaled times, shape (B,).
        dim: The embedding's width (even).
    """
    half = dim // 2
    frequencies = torch.exp(-math.log(10000) * torch.arange(half, device=x.device) / max(half - 1, 1))
    angles = x.to(torch.float32)[:, None] * frequencies
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


def _conv_block(channels_in: int, channels_out: int, kernel: int, groups: int) -> nn.Sequential:
    """Conv1d → GroupNorm → Mish, keeping the length."""
    return nn.Sequential(nn.Conv1d(channels_in, channels_out, kernel, padding=kernel // 2),
                         nn.GroupNorm(groups, channels_out), nn.Mish())


class ConditionalResidualBlock1D(nn.Module):
    """Conv1d → GroupNorm → Mish twice, with FiLM of the condition between them and a residual connection.

    Args:
        channels_in: The input channels.
        channels_out: The output channels.
        cond_dim: The condition's width.
        kernel: The convolutions' kernel size.
        groups: The GroupNorm groups.
    """

    def __init__(self, channels_in: int, channels_out: int, cond_dim: int, kernel: int, groups: int) -> None:
        super().__init__()
        self.first = _conv_block(channels_in, channels_out, kernel, groups)
        self.second = _conv_block(channels_out, channels_out, kernel, groups)
        self.film = nn.Sequential(nn.Mish(), nn.Linear(cond_dim, 2 * channels_out))
        self.skip = nn.Conv1d(channels_in, channels_out, 1) if channels_in != channels_out else nn.Identity()

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The block on x (B, channels_in, L) with condition ``cond`` (B, cond_dim)."""
        scale, bias = self.film(cond)[:, :, None].chunk(2, dim=1)
        return self.second(scale * self.first(x) + bias) + self.skip(x)


class ConditionalUnet1D(nn.Module):
    """ε̂(x_t, t, global_cond) for chunks x_t of shape (B, horizon, action_dim).

    The horizon must be divisible by 2^(len(down_dims) − 1).

    Args:
        action_dim: The action's dimension.
        global_cond_dim: The global condition's width.
        down_dims: The channels per resolution (multiples of ``groups``).
        step_embed_dim: The timestep embedding's width.
        kernel: The convolutions' kernel size.
        groups: The GroupNorm groups.
        time_scale: The factor of t in the sinusoidal embedding.

    Raises:
        ValueError: If a width of ``down_dims`` is not a multiple of ``groups``.
    """

    def __init__(self, action_dim: int, global_cond_dim: int, down_dims: tuple[int, ...] = (64, 128, 256),
                 step_embed_dim: int = 64, kernel: int = 5, groups: int = 8, time_scale: float = 100.0) -> None:
        super().__init__()
        if any(width % groups for width in down_dims):
            raise ValueError(f"down_dims must be multiples of groups = {groups}, got {down_dims}")
        self.step_embed_dim, self.time_scale = step_embed_dim, time_scale
        self.step_encoder = nn.Sequential(nn.Linear(step_embed_dim, 4 * step_embed_dim), nn.Mish(),
                                          nn.Linear(4 * step_embed_dim, step_embed_dim))
        cond = step_embed_dim + global_cond_dim
        widths = [action_dim, *down_dims]
        self.down = nn.ModuleList(
            nn.ModuleList([ConditionalResidualBlock1D(w_in, w_out, cond, kernel, groups),
                           ConditionalResidualBlock1D(w_out, w_out, cond, kernel, groups),
                           nn.Conv1d(w_out, w_out, 3, 2, 1) if index < len(down_dims) - 1 else nn.Identity()])
            for index, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:])))
        self.middle = nn.ModuleList(ConditionalResidualBlock1D(widths[-1], widths[-1], cond, kernel, groups)
                                    for _ in range(2))
        self.up = nn.ModuleList(
            nn.ModuleList([ConditionalResidualBlock1D(2 * w_out, w_in, cond, kernel, groups),
                           ConditionalResidualBlock1D(w_in, w_in, cond, kernel, groups),
                           nn.ConvTranspose1d(w_in, w_in, 4, 2, 1)])
            for w_in, w_out in zip(widths[-2:0:-1], widths[:1:-1]))
        self.output = nn.Sequential(_conv_block(down_dims[0], down_dims[0], kernel, groups),
                                    nn.Conv1d(down_dims[0], action_dim, 1))

    def forward(self, x: torch.Tensor, t: torch.Tensor, global_cond: torch.Tensor) -> torch.Tensor:
        """ε̂ (B, horizon, action_dim) of noisy chunks x at times t (B,) under ``global_cond`` (B, global_cond_dim)."""
        steps = self.step_encoder(sinusoidal_embedding(self.time_scale * t, self.step_embed_dim))
        cond = torch.cat([steps, global_cond.to(steps.dtype)], dim=-1)
        h, skips = x.transpose(1, 2), []
        for first, second, downsample in self.down:
            h = second(first(h, cond), cond)
            skips.append(h)
            h = downsample(h)
        for block in self.middle:
            h = block(h, cond)
        for first, second, upsample in self.up:
            h = upsample(second(first(torch.cat([h, skips.pop()], dim=1), cond), cond))
        return self.output(h).transpose(1, 2)
