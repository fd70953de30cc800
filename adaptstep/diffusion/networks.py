"""A small residual-MLP noise predictor for vector data, usable as a denoiser.

The network sees x_t and sinusoidal features of the half log-SNR λ_t = log α_t − log σ_t (not of
t, so the conditioning is in the variable the solvers step in) and predicts the noise ε of
x_t = α_t x_0 + σ_t ε. As a denoiser it returns x̂0 = (x_t − σ_t ε̂)/α_t.
"""

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn

from adaptstep.core.settings import require_int
from adaptstep.nn.denoisers import per_sample
from adaptstep.nn.layers import ResidualBlock
from adaptstep.nn.schedules import SCHEDULES, make_noise_schedule

# Angular frequencies of the λ features (features sin(f λ), cos(f λ)), geometric over this range: the
# slowest has period 2π·8 ≈ 50, far longer than the λ range of the schedules (about −5…5), the
# fastest a period of 0.8.
LAMBDA_FREQUENCY_RANGE = (1 / 8, 8.0)


@dataclass(frozen=True)
class DenoiserConfig:
    """Everything needed to rebuild a ``NeuralDenoiser``.

    Args:
        dim: The data dimension.
        width: The hidden width.
        depth: The number of residual blocks.
        frequencies: The number of sin/cos pairs of λ features.
        schedule: The noise schedule's name (a ``SCHEDULES`` key).

    Raises:
        ValueError: If a size is not an integer or ``schedule`` is unknown.
    """

    dim: int
    width: int = 256
    depth: int = 3
    frequencies: int = 32
    schedule: str = "linear"

    def __post_init__(self) -> None:
        for name in ("dim", "width", "depth", "frequencies"):
            require_int(name, getattr(self, name))
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {sorted(SCHEDULES)}, got {self.schedule!r}")

    def to_dict(self) -> dict:
        """The fields as a plain dict."""
        return asdict(self)


class NeuralDenoiser(nn.Module):
    """ε̂(x_t, λ_t) by a residual MLP; ``predict_x0`` implements the denoiser protocol.

    ``forward`` and ``predict_x0`` take x of shape (batch, d) in any float dtype (the network runs in
    its parameters' dtype; results come back in x's dtype) and t as a 0-d tensor or of shape (batch,).

    Args:
        config: The architecture.
    """

    def __init__(self, config: DenoiserConfig) -> None:
        super().__init__()
        self.config = config
        self.schedule = make_noise_schedule(config.schedule)
        low, high = LAMBDA_FREQUENCY_RANGE
        frequencies = torch.exp(torch.linspace(math.log(low), math.log(high), config.frequencies))
        self.register_buffer("frequencies", frequencies)
        width = config.width
        self.embed = nn.Sequential(nn.Linear(2 * config.frequencies, width), nn.SiLU(), nn.Linear(width, width))
        self.input = nn.Linear(config.dim, width)
        self.blocks = nn.ModuleList(ResidualBlock(width) for _ in range(config.depth))
        self.output = nn.Sequential(nn.LayerNorm(width), nn.SiLU(), nn.Linear(width, config.dim))

    def _times(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if x.ndim != 2 or x.shape[1] != self.config.dim:
            raise ValueError(f"x must have shape (batch, {self.config.dim}), got {tuple(x.shape)}")
        t = t.to(x.device) if isinstance(t, torch.Tensor) else torch.tensor(t, dtype=torch.float64, device=x.device)
        if not (t.ndim == 0 or t.shape == (len(x),)):
            raise ValueError(f"t must be 0-d or of shape ({len(x)},), got {tuple(t.shape)}")
        return t.to(torch.float64)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The noise prediction ε̂(x_t, t), in x's dtype.

        Args:
            x: x_t, shape (batch, dim).
            t: The time, 0-d or of shape (batch,).

        Raises:
            ValueError: If ``x`` or ``t`` has the wrong shape.
        """
        t = self._times(x, t)
        dtype = self.frequencies.dtype
        angles = self.schedule.lambda_(t).to(dtype).reshape(-1, 1) * self.frequencies
        c = self.embed(torch.cat([torch.sin(angles), torch.cos(angles)], dim=1))
        h = self.input(x.to(dtype)) + c
        for block in self.blocks:
            h = block(h, c)
        return self.output(h).to(x.dtype)

    def predict_x0(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x̂0 = (x − σ_t ε̂) / α_t, with α_t and σ_t in float64 before casting to x's dtype.

        Args:
            x: x_t, shape (batch, dim).
            t: The time, 0-d or of shape (batch,).
        """
        epsilon = self(x, t)
        t = self._times(x, t)
        alpha = per_sample(self.schedule.alpha(t), x).to(x.dtype)
        sigma = per_sample(self.schedule.sigma(t), x).to(x.dtype)
        return (x - sigma * epsilon) / alpha
