"""Rectified flow on vector data: a residual-MLP velocity model, its training by flow matching, save/load.

Interpolant x_t = (1 − t)·x0 + t·ε with ε ~ N(0, I) and t ∈ [0, 1] (t = 1 noise, t = 0 data). The network
u_θ(x_t, t) regresses the conditional velocity ε − x0, so its optimum is u_t(x) = E[ε − x0 | x_t = x]
(conditional flow matching, Lipman et al. 2022; rectified flow, Liu et al. 2022). Loss
E_{x0, ε, t ~ U(0, 1)} mean_i (u_θ(x_t, t) − (ε − x0))_i², minimised with Adam (gradient norm clipped at 1);
the returned model holds an exponential moving average of the weights with decay min(ema_decay, (1 + k)/(10 + k))
at step k, as ``adaptstep.nn.training``.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
from torch import nn
from tqdm.auto import tqdm

from adaptstep.core.settings import require_int
from adaptstep.nn.checkpoints import load_checkpoint, save_checkpoint
from adaptstep.nn.data import TRAINING_DATASETS, load_dataset
from adaptstep.nn.device import resolve_device
from adaptstep.nn.layers import ResidualBlock
from adaptstep.nn.training import check_training_settings, loss_curve, training_step

# Angular frequencies f of the time features sin(f t), cos(f t), geometric over this range: the slowest has
# period 4π, so the features stay monotone over t ∈ [0, 1]; the fastest a period of about 0.06.
TIME_FREQUENCY_RANGE = (1 / 2, 100.0)


@dataclass(frozen=True)
class FlowConfig:
    """Everything needed to rebuild a ``FlowNet``.

    Args:
        dim: The data dimension.
        width: The hidden width.
        depth: The residual blocks.
        frequencies: The sin/cos pairs of time features.

    Raises:
        ValueError: If a field is not an int >= 1.
    """

    dim: int
    width: int = 128
    depth: int = 3
    frequencies: int = 32

    def __post_init__(self) -> None:
        for name in ("dim", "width", "depth", "frequencies"):
            require_int(name, getattr(self, name))


class FlowNet(nn.Module):
    """The velocity u_θ(x_t, t) ≈ E[ε − x0 | x_t] by a residual MLP conditioned on sinusoidal features of t.

    ``velocity(x, t)`` takes x of shape (batch, dim) in any float dtype (the network runs in its parameters'
    dtype; the result comes back in x's dtype) and t a number, a 0-d tensor or a tensor of shape (batch,).

    Args:
        config: The architecture.
    """

    def __init__(self, config: FlowConfig) -> None:
        super().__init__()
        self.config = config
        self.metadata: dict = {}
        low, high = TIME_FREQUENCY_RANGE
        self.register_buffer("frequencies", torch.exp(torch.linspace(math.log(low), math.log(high),
                                                                     config.frequencies)))
        width = config.width
        self.embed = nn.Sequential(nn.Linear(2 * config.frequencies, width), nn.SiLU(), nn.Linear(width, width))
        self.input = nn.Linear(config.dim, width)
        self.blocks = nn.ModuleList(ResidualBlock(width) for _ in range(config.depth))
        self.output = nn.Sequential(nn.LayerNorm(width), nn.SiLU(), nn.Linear(width, config.dim))

    @property
    def dim(self) -> int:
        """The data dimension."""
        return self.config.dim

    @property
    def device(self) -> torch.device:
        """The device of the parameters."""
        return self.frequencies.device

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the parameters."""
        return self.frequencies.dtype

    def forward(self, x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        """u_θ(x, t) (as ``velocity``).

        Raises:
            ValueError: If ``x`` is not (batch, dim) or ``t`` neither 0-d nor (batch,).
        """
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise ValueError(f"x must have shape (batch, {self.dim}), got {tuple(x.shape)}")
        t = torch.as_tensor(t, device=self.device)
        if not (t.ndim == 0 or t.shape == (len(x),)):
            raise ValueError(f"t must be 0-d or of shape ({len(x)},), got {tuple(t.shape)}")
        angles = t.to(self.dtype).reshape(-1, 1) * self.frequencies
        c = self.embed(torch.cat([torch.sin(angles), torch.cos(angles)], dim=1))
        h = self.input(x.to(self.device, self.dtype)) + c
        for block in self.blocks:
            h = block(h, c)
        return self.output(h).to(x.dtype)

    def velocity(self, x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        """u_θ(x, t), shape (batch, dim), in x's dtype (on the model's device)."""
        return self(x, t)


def train_flow(
    data: str = "digits",
    steps: int = 30_000,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    width: int = 128,
    depth: int = 3,
    ema_decay: float = 0.999,
    device: str | torch.device = "auto",
    progress: bool = False,
) -> FlowNet:
    """A ``FlowNet`` trained by flow matching on the training split of a data set.

    Initialisation, minibatches (rows drawn with replacement), times t ~ U(0, 1) and noise all follow ``seed``
    and are drawn on the CPU, so a CPU run with one thread is reproducible.

    Args:
        data: The data set, one of ``adaptstep.nn.data.TRAINING_DATASETS``.
        steps: The Adam steps (>= 1).
        batch_size: The minibatch size (>= 1).
        lr: The learning rate (> 0).
        seed: The seed of everything random.
        width: The hidden width.
        depth: The residual blocks.
        ema_decay: The EMA's decay cap, in [0, 1).
        device: The torch device, ``"auto"`` for ``resolve_device``'s choice.
        progress: Show a progress bar.

    Returns:
        The EMA model in eval mode with gradients off; ``model.metadata`` records the settings, ``train_size``,
        ``final_loss`` (mean loss of the last 10% of steps), ``loss_curve`` (the loss averaged over up to 100
        windows of steps) and wall-clock ``seconds``.

    Raises:
        ValueError: If ``data`` is unknown or a training setting is out of range.
    """
    if data not in TRAINING_DATASETS:
        raise ValueError(f"data must be one of {list(TRAINING_DATASETS)}, got {data!r}")
    check_training_settings(steps, batch_size, lr, ema_decay)
    device = resolve_device(device)
    x, _ = load_dataset(data, seed=seed, split="train")
    config = FlowConfig(dim=x.shape[1], width=width, depth=depth)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = FlowNet(config).to(device)
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    generator = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    losses = []
    for step in tqdm(range(steps), desc="flow", disable=not progress, mininterval=1.0):
        x0 = x[torch.randint(len(x), (batch_size,), generator=generator)].to(device)
        t = torch.rand(batch_size, 1, generator=generator).to(device)
        noise = torch.randn(batch_size, config.dim, generator=generator).to(device)
        loss = torch.mean((model((1 - t) * x0 + t * noise, t.squeeze(1)) - (noise - x0)) ** 2)
        training_step(model, ema, optimizer, loss, step, ema_decay)
        losses.append(loss.item())
    tail = max(1, steps // 10)
    ema.metadata = {
        "data": data,
        "train_size": len(x),
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "seed": seed,
        "ema_decay": ema_decay,
        "time_sampling": "uniform",
        "device": str(device),
        "final_loss": sum(losses[-tail:]) / tail,
        "loss_curve": loss_curve(losses),
        "seconds": time.perf_counter() - start,
    }
    return ema.eval()


def save_flow(model: FlowNet, path: str | Path) -> Path:
    """Write config, weights (on the CPU) and ``model.metadata`` to ``path`` atomically; returns ``path``."""
    return save_checkpoint(model, asdict(model.config), model.metadata, path)


def load_flow(path: str | Path, device: str | torch.device = "auto") -> FlowNet:
    """The ``FlowNet`` saved at ``path`` by ``save_flow``, in eval mode with gradients off.

    Its metadata is ``model.metadata``.

    Raises:
        FileNotFoundError: If there is no file at ``path``.
        ValueError: If the file is unreadable or its weights do not fit the model built from its config.
    """
    return load_checkpoint(path, lambda config: FlowNet(FlowConfig(**config)), "flow", device)
