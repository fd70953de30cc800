"""Diffuser's temporal U-Net (Janner et al. 2022): 1-D convolutions over the planning horizon.

Input and output (batch, horizon, transition_dim). Each resolution has two residual blocks (Conv1d kernel 5,
GroupNorm, Mish; the noise level's embedding added between the convolutions), the horizon is halved on the way
down and doubled on the way up, with skip connections (the full-resolution skip is unused, as in Diffuser).
The network is conditioned on the half log-SNR λ_t through sinusoidal features, like
``adaptstep.diffusion.networks``. With ``condition_dim`` > 0 it also takes a condition vector c (a goal, a
return-to-go): an MLP embedding of c is added to the noise-level embedding, and rows whose ``keep`` flag is False
get a learned "null" embedding instead (initialised at zero), for classifier-free guidance (Ho & Salimans 2022).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def _conv_block(channels_in: int, channels_out: int, kernel: int = 5) -> nn.Sequential:
    """Conv1d → GroupNorm → Mish, keeping the length."""
    return nn.Sequential(nn.Conv1d(channels_in, channels_out, kernel, padding=kernel // 2),
                         nn.GroupNorm(min(8, channels_out), channels_out), nn.Mish())


class ResidualTemporalBlock(nn.Module):
    """Two convolution blocks with the noise level's embedding added between them, and a residual connection.

    Args:
        channels_in: Input channels.
        channels_out: Output channels.
        embed_dim: The embedding's width.
        kernel: The convolutions' kernel size.
    """

    def __init__(self, channels_in: int, channels_out: int, embed_dim: int, kernel: int = 5) -> None:
        super().__init__()
        self.first = _conv_block(channels_in, channels_out, kernel)
        self.second = _conv_block(channels_out, channels_out, kernel)
        self.embed = nn.Sequential(nn.Mish(), nn.Linear(embed_dim, channels_out))
        self.skip = nn.Conv1d(channels_in, channels_out, 1) if channels_in != channels_out else nn.Identity()

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """The block on ``x`` (batch, channels_in, horizon) with ``embedding`` (batch, embed_dim)."""
        h = self.first(x) + self.embed(embedding)[:, :, None]
        return self.second(h) + self.skip(x)


class TemporalUnet(nn.Module):
    """ε̂(x_t, λ_t) for trajectories x of shape (batch, horizon, transition_dim).

    Args:
        transition_dim: The width of one step, obs_dim + act_dim (or obs_dim).
        horizon: The trajectory's steps, divisible by 2^(len(dim_mults) − 1).
        dim: The base width.
        dim_mults: The width multipliers of the resolutions.
        frequencies: The sin/cos pairs of the noise level's features.
        condition_dim: The condition vector's dimension (0: unconditioned).

    Raises:
        ValueError: If ``condition_dim`` is not an int >= 0 or ``horizon`` is not divisible as required.
    """

    def __init__(self, transition_dim: int, horizon: int, dim: int = 32, dim_mults: tuple[int, ...] = (1, 2, 4),
                 frequencies: int = 16, condition_dim: int = 0) -> None:
        super().__init__()
        if isinstance(condition_dim, bool) or not (isinstance(condition_dim, int) and condition_dim >= 0):
            raise ValueError(f"condition_dim must be an int >= 0, got {condition_dim!r}")
        if horizon % 2 ** (len(dim_mults) - 1):
            raise ValueError(f"horizon must be divisible by {2 ** (len(dim_mults) - 1)} for dim_mults {dim_mults}, "
                             f"got {horizon}")
        self.register_buffer("frequencies", torch.exp(torch.linspace(math.log(1 / 8), math.log(8.0), frequencies)))
        self.embed = nn.Sequential(nn.Linear(2 * frequencies, 4 * dim), nn.Mish(), nn.Linear(4 * dim, dim))
        self.condition_dim = condition_dim
        if condition_dim:
            self.condition_embed = nn.Sequential(nn.Linear(condition_dim, 4 * dim), nn.Mish(), nn.Linear(4 * dim, dim))
            self.null_condition = nn.Parameter(torch.zeros(dim))
        widths = [transition_dim, *(dim * m for m in dim_mults)]
        self.down, self.up = nn.ModuleList(), nn.ModuleList()
        for index, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:])):
            last = index == len(dim_mults) - 1
            self.down.append(nn.ModuleList([ResidualTemporalBlock(w_in, w_out, dim),
                                            ResidualTemporalBlock(w_out, w_out, dim),
                                            nn.Identity() if last else nn.Conv1d(w_out, w_out, 3, 2, 1)]))
        self.middle = nn.ModuleList([ResidualTemporalBlock(widths[-1], widths[-1], dim) for _ in range(2)])
        for w_in, w_out in zip(widths[:0:-1], widths[-2:0:-1]):
            self.up.append(nn.ModuleList([ResidualTemporalBlock(2 * w_in, w_out, dim),
                                          ResidualTemporalBlock(w_out, w_out, dim),
                                          nn.ConvTranspose1d(w_out, w_out, 4, 2, 1)]))
        self.output = nn.Sequential(_conv_block(dim, dim), nn.Conv1d(dim, transition_dim, 1))

    def forward(self, x: torch.Tensor, log_snr: torch.Tensor, condition: torch.Tensor | None = None,
                keep: torch.Tensor | None = None) -> torch.Tensor:
        """The network's output for ``x`` at half log-SNR ``log_snr``.

        Args:
            x: Trajectories, shape (batch, horizon, transition_dim).
            log_snr: λ_t per row.
            condition: Shape (batch, condition_dim), or None (every row null).
            keep: Shape (batch,), bool, marking the rows that see their condition rather than the null
                embedding; None for all True.
        """
        angles = log_snr.reshape(-1, 1).to(self.frequencies.dtype) * self.frequencies
        embedding = self.embed(torch.cat([torch.sin(angles), torch.cos(angles)], dim=1))
        if condition is not None and not self.condition_dim:
            raise ValueError("condition needs a network built with condition_dim > 0")
        if self.condition_dim:
            condition_embedding = self.null_condition.expand(len(x), -1)
            if condition is not None:
                given = self.condition_embed(condition.reshape(len(x), self.condition_dim).to(embedding.dtype))
                keep = torch.ones(len(x), dtype=torch.bool, device=x.device) if keep is None else keep.reshape(-1)
                condition_embedding = torch.where(keep[:, None], given, condition_embedding)
            embedding = embedding + condition_embedding
        h, skips = x.transpose(1, 2), []
        for first, second, downsample in self.down:
            h = second(first(h, embedding), embedding)
            skips.append(h)
            h = downsample(h)
        for block in self.middle:
            h = block(h, embedding)
        for first, second, upsample in self.up:
            h = second(first(torch.cat([h, skips.pop()], dim=1), embedding), embedding)
            h = upsample(h)
        return self.output(h).transpose(1, 2)
