"""Diffusion over action chunks, shared by the Diffusion Policy baseline and the dual system's action head.

An action chunk a0 is a (pred_horizon, action_dim) array in normalised units ([-1, 1] per dimension, see
``MinMaxNormalizer``). Training is the DDPM noise loss of Diffusion Policy (Chi et al. 2023) in continuous time:
E |ε̂(α_t a0 + σ_t ε, t, c) − ε|² with t ~ U[t_min, t_max] under the cosine VP schedule (Nichol & Dhariwal 2021,
``squaredcos_cap_v2`` in diffusers). Sampling runs any data-prediction solver of ``adaptstep.diffusion`` (DDIM,
DPM-Solver++) on logSNR-uniform times, with x̂0 = (x − σ_t ε̂)/α_t clipped to [-1, 1] as Diffusion Policy's
``clip_sample`` does.

A chunk network is any module called as ``network(x_t, t, condition)`` with x_t (B, pred_horizon, action_dim),
t (B,) float times in [t_min, t_max] and ``condition`` a dict of tensors, returning ε̂ of x_t's shape.
"""

from __future__ import annotations

import torch
from torch import nn

from adaptstep.nn.schedules import NoiseSchedule, make_noise_schedule
from adaptstep.nn.solvers import SOLVERS, sample
from adaptstep.nn.timesteps import make_timesteps

SCHEDULE = "cosine"


def chunk_schedule() -> NoiseSchedule:
    """The noise schedule of every action-chunk model."""
    return make_noise_schedule(SCHEDULE)


class MinMaxNormalizer(nn.Module):
    """Maps each dimension's data range [low, high] onto [-1, 1] (Diffusion Policy / LeRobot MIN_MAX).

    Dimensions of zero range map to 0.

    Args:
        low (torch.Tensor): Each dimension's lowest value.
        high (torch.Tensor): Each dimension's highest value.
    """

    def __init__(self, low: torch.Tensor, high: torch.Tensor) -> None:
        super().__init__()
        low, high = torch.as_tensor(low, dtype=torch.float32), torch.as_tensor(high, dtype=torch.float32)
        self.register_buffer("low", low)
        self.register_buffer("scale", ((high - low) / 2).clamp_min(1e-6))

    @classmethod
    def placeholder(cls, dim: int) -> MinMaxNormalizer:
        """A normaliser of ``dim`` dimensions whose buffers a checkpoint's weights will overwrite."""
        return cls(torch.zeros(dim), torch.ones(dim))

    @classmethod
    def fit(cls, data: torch.Tensor) -> MinMaxNormalizer:
        """The normaliser of ``data``'s range per dimension (its last axis)."""
        data = torch.as_tensor(data, dtype=torch.float32).reshape(-1, data.shape[-1])
        return cls(data.min(0).values, data.max(0).values)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in data units mapped to [-1, 1]."""
        return (x - self.low) / self.scale - 1

    def unnormalize(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` in [-1, 1] mapped back to data units."""
        return (x + 1) * self.scale + self.low


def chunk_diffusion_loss(network: nn.Module, actions: torch.Tensor, condition: dict[str, torch.Tensor],
                         schedule: NoiseSchedule, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mean squared ε error on normalised ``actions`` at random times.

    Args:
        network: The chunk network.
        actions: Normalised chunks, shape (B, pred_horizon, action_dim).
        condition: The network's condition tensors.
        schedule: The noise schedule.
        generator: Draws the noise and times on the CPU, so runs repeat across devices; None for torch's global one.
    """
    batch = len(actions)
    uniform = torch.rand(batch, generator=generator, dtype=torch.float64)
    t = (schedule.t_min + (schedule.t_max - schedule.t_min) * uniform).to(actions.device)
    noise = torch.randn(actions.shape, generator=generator).to(actions.device)
    alpha = schedule.alpha(t).to(actions.dtype)[:, None, None]
    sigma = schedule.sigma(t).to(actions.dtype)[:, None, None]
    return torch.mean((network(alpha * actions + sigma * noise, t, condition) - noise) ** 2)


class ChunkDenoiser:
    """The ``predict_x0`` protocol of ``adaptstep.nn.solvers`` for a chunk network under ``condition``.

    Args:
        network: The chunk network.
        condition: The network's condition tensors.
        schedule: The noise schedule.
        shape: A chunk's (pred_horizon, action_dim); the solver's states are flattened chunks.
    """

    def __init__(self, network: nn.Module, condition: dict[str, torch.Tensor], schedule: NoiseSchedule,
                 shape: tuple[int, int]) -> None:
        self.network, self.condition, self.schedule, self.shape = network, condition, schedule, shape

    def predict_x0(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x̂0 = (x − σ_t ε̂)/α_t clipped to [-1, 1], for flattened chunks x (B, pred_horizon·action_dim)."""
        t = torch.as_tensor(t, dtype=torch.float64, device=x.device).expand(len(x))
        chunks = x.reshape(len(x), *self.shape)
        alpha = self.schedule.alpha(t).to(x.dtype)[:, None, None]
        sigma = self.schedule.sigma(t).to(x.dtype)[:, None, None]
        x0 = (chunks - sigma * self.network(chunks, t, self.condition)) / alpha
        return x0.clamp(-1, 1).reshape(len(x), -1)


@torch.no_grad()
def sample_chunks(network: nn.Module, condition: dict[str, torch.Tensor], batch: int, shape: tuple[int, int],
                  schedule: NoiseSchedule, steps: int = 10, solver: str = "ddim",
                  seed: int | None = None) -> tuple[torch.Tensor, int]:
    """Sample ``batch`` normalised chunks.

    Args:
        network: The chunk network.
        condition: The network's condition tensors, batched as ``batch``.
        batch: The number of chunks.
        shape: A chunk's (pred_horizon, action_dim).
        schedule: The noise schedule.
        steps: The solver steps (>= 1).
        solver: A data-prediction solver of ``SOLVERS`` (``"ddim"``, DPM-Solver++ variants).
        seed: Seeds the initial noise (drawn on the CPU); None for torch's global generator.

    Returns:
        (chunks of shape (batch, *shape), NFE).

    Raises:
        ValueError: If ``steps`` is not an int >= 1 or ``solver`` is unknown.
    """
    if not (isinstance(steps, int) and not isinstance(steps, bool) and steps >= 1):
        raise ValueError(f"steps must be an int >= 1, got {steps!r}")
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    device = next(network.parameters()).device
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    x = torch.randn(batch, shape[0] * shape[1], generator=generator).to(device)
    times = make_timesteps("logsnr_uniform", schedule, steps)
    x, nfe = sample(ChunkDenoiser(network, condition, schedule, shape), schedule, x, times, solver)
    return x.reshape(batch, *shape), nfe
