"""Diffuser (Janner et al. 2022): a diffusion model over state–action trajectories that plans by inpainting.

A trajectory of ``horizon`` steps is the (horizon, obs_dim + act_dim) array of states and actions, normalised
per dimension with the dataset's mean and standard deviation. The temporal U-Net predicts v = α_t ε − σ_t x0
for x_t = α_t x0 + σ_t ε under a VP schedule in continuous time (v-prediction, Salimans & Ho 2022), and
x̂0 = α_t x_t − σ_t v̂. Diffuser predicts x0 directly; here that could not pass x_t through at low noise (8× the
error of x_t/α_t at t = 0.02), and ε-prediction amplifies errors by 1/α_t ≈ 150 at high noise. Any
data-prediction solver of ``adaptstep.diffusion`` samples it with a chosen number of steps. Conditioning is inpainting:
the data prediction x̂0 has the current state (and, for goal-reaching, the goal position at the last step)
written into it before every solver update, and the returned plan carries them exactly. As in Diffuser's
training, the network always sees the conditioned entries clean (the first state, and with ``goal_dims`` > 0 the
first ``goal_dims`` coordinates of the last state), in training and in sampling alike.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from adaptstep.core.settings import require_int
from adaptstep.nn.device import resolve_device
from adaptstep.nn.schedules import make_noise_schedule
from adaptstep.nn.solvers import sample
from adaptstep.nn.timesteps import make_timesteps
from adaptstep.nn.training import check_training_settings, loss_curve, training_step
from adaptstep.planning.datasets import OfflineDataset
from adaptstep.planning.temporal_unet import TemporalUnet

if TYPE_CHECKING:
    from adaptstep.planning.value_guidance import ValueGuide


@dataclass(frozen=True)
class DiffuserConfig:
    """Everything needed to rebuild a ``Diffuser``.

    Args:
        obs_dim: The state's dimension.
        act_dim: The action's dimension.
        horizon: The plan's steps (divisible by 2^(len(dim_mults) − 1)).
        dim: The U-Net's base width.
        dim_mults: The width multipliers of the U-Net's resolutions.
        schedule: The VP noise schedule's name.
        goal_dims: The first state coordinates of the last step that a goal fixes (0: no goal conditioning).
    """

    obs_dim: int
    act_dim: int
    horizon: int
    dim: int = 32
    dim_mults: tuple[int, ...] = (1, 2, 4)
    schedule: str = "linear"
    goal_dims: int = 0

    def condition_index(self, goal: bool) -> torch.Tensor:
        """Flat positions of the first state (and of the goal coordinates of the last state)."""
        index = torch.arange(self.obs_dim)
        if goal:
            last = (self.horizon - 1) * (self.obs_dim + self.act_dim)
            index = torch.cat([index, last + torch.arange(self.goal_dims)])
        return index


class Diffuser(nn.Module):
    """v̂ over flattened, normalised trajectories (batch, horizon·(obs_dim + act_dim)).

    ``normalize`` and ``unnormalize`` map (…, obs_dim + act_dim) arrays between data and model units.

    Args:
        config: The architecture.
        mean: The dataset's per-dimension mean, shape (obs_dim + act_dim,).
        std: The dataset's per-dimension standard deviation, same shape.
    """

    def __init__(self, config: DiffuserConfig, mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.config, self.metadata = config, {}
        self.transition_dim = config.obs_dim + config.act_dim
        self.schedule = make_noise_schedule(config.schedule)
        self.network = TemporalUnet(self.transition_dim, config.horizon, config.dim, tuple(config.dim_mults))
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32))

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """Data units to model units, (x − mean) / std."""
        return (x - self.mean) / self.std

    def unnormalize(self, x: torch.Tensor) -> torch.Tensor:
        """Model units to data units."""
        return x * self.std + self.mean

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """v̂(x, t) for flattened trajectories ``x`` at times ``t``."""
        trajectories = x.reshape(len(x), self.config.horizon, self.transition_dim).to(self.mean.dtype)
        t = torch.as_tensor(t, dtype=torch.float64, device=x.device).expand(len(x))
        return self.network(trajectories, self.schedule.lambda_(t)).reshape(len(x), -1).to(x.dtype)

    def predict_x0(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """x̂0 = α_t x − σ_t v̂(x, t)."""
        t = torch.as_tensor(t, dtype=torch.float64, device=x.device).expand(len(x))
        alpha = self.schedule.alpha(t).to(x.dtype)[:, None]
        sigma = self.schedule.sigma(t).to(x.dtype)[:, None]
        return alpha * x - sigma * self(x, t)


class InpaintingDenoiser:
    """The denoiser protocol (``predict_x0``) for a ``Diffuser`` with fixed entries of x̂0.

    Args:
        model: The Diffuser.
        index: The flat positions fixed in every row.
        values: Their values, in model units.
        clip: x̂0 is clipped to ±``clip`` standard deviations, as Diffuser clips its denoised trajectories.
    """

    def __init__(self, model: Diffuser, index: torch.Tensor, values: torch.Tensor, clip: float = 5.0) -> None:
        self.model, self.index, self.values, self.clip = model, index, values, clip

    def predict_x0(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The model's x̂0 of ``x`` with the fixed entries written in before and after, clipped."""
        x = x.clone()
        x[:, self.index] = self.values
        x0 = self.model.predict_x0(x, t).clamp(-self.clip, self.clip)
        x0[:, self.index] = self.values
        return x0


def trajectory_starts(dataset: OfflineDataset, horizon: int) -> np.ndarray:
    """Indices i such that transitions i … i + horizon − 1 lie inside one episode."""
    starts = [np.arange(episode.start, episode.stop - horizon + 1) for episode in dataset.episodes()
              if episode.stop - episode.start >= horizon]
    if not starts:
        raise ValueError(f"no episode is at least horizon = {horizon} transitions long")
    return np.concatenate(starts)


def train_diffuser(dataset: OfflineDataset, horizon: int = 32, steps: int = 10_000, batch_size: int = 64,
                   lr: float = 2e-4, dim: int = 32, goal_dims: int = 0, seed: int = 0, ema_decay: float = 0.995,
                   device: str | torch.device = "auto", progress: bool = False,
                   snapshot: Callable[[Diffuser], None] | None = None, snapshot_every: int = 0) -> Diffuser:
    """Train a ``Diffuser`` on windows of ``horizon`` transitions.

    Args:
        dataset: The offline dataset.
        horizon: The plan's steps.
        steps: The Adam steps (>= 1).
        batch_size: The minibatch size (>= 1).
        lr: The learning rate (> 0).
        dim: The U-Net's base width.
        goal_dims: The state coordinates of the last step that a goal fixes (0: no goal conditioning).
        seed: The seed of everything random.
        ema_decay: The EMA's decay cap, in [0, 1).
        device: The torch device, ``"auto"`` for ``resolve_device``'s choice.
        progress: Show a progress bar.
        snapshot: Called with the EMA model (its ``metadata`` for the steps so far) every ``snapshot_every`` steps
            before the last, e.g. to save a training curve's checkpoints.
        snapshot_every: The steps between snapshots (0: none).

    Returns:
        The EMA model in eval mode with ``metadata`` (settings, final_loss, loss_curve, seconds).

    Raises:
        ValueError: If a training setting is out of range.
    """
    check_training_settings(steps, batch_size, lr, ema_decay)
    require_int("snapshot_every", snapshot_every, minimum=0)
    device = resolve_device(device)
    data = torch.as_tensor(np.concatenate([dataset.observations, dataset.actions], axis=1), dtype=torch.float32)
    starts = torch.as_tensor(trajectory_starts(dataset, horizon))
    config = DiffuserConfig(dataset.observations.shape[1], dataset.actions.shape[1], horizon, dim,
                            goal_dims=goal_dims)
    index = config.condition_index(goal=goal_dims > 0).to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = Diffuser(config, data.mean(0), data.std(0).clamp_min(1e-6)).to(device)
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    generator, schedule, offsets = torch.Generator().manual_seed(seed), model.schedule, torch.arange(horizon)
    losses: list[float] = []
    started = time.perf_counter()

    def metadata() -> dict:
        tail = max(1, len(losses) // 10)
        return {"config": asdict(config), "steps": len(losses), "batch_size": batch_size, "lr": lr, "seed": seed,
                "transitions": len(dataset), "final_loss": sum(losses[-tail:]) / tail,
                "loss_curve": loss_curve(losses), "seconds": time.perf_counter() - started}

    for step in tqdm(range(steps), desc="diffuser", disable=not progress, mininterval=1.0):
        rows = starts[torch.randint(len(starts), (batch_size,), generator=generator)][:, None] + offsets
        x0 = model.normalize(data[rows].to(device)).reshape(batch_size, -1)
        uniform = torch.rand(batch_size, generator=generator, dtype=torch.float64)
        t = (schedule.t_min + (schedule.t_max - schedule.t_min) * uniform).to(device)
        noise = torch.randn(x0.shape, generator=generator).to(device)
        alpha = schedule.alpha(t).to(torch.float32)[:, None]
        sigma = schedule.sigma(t).to(torch.float32)[:, None]
        x_t = alpha * x0 + sigma * noise
        x_t[:, index] = x0[:, index]
        loss = torch.mean((model(x_t, t) - (alpha * noise - sigma * x0)) ** 2)
        training_step(model, ema, optimizer, loss, step, ema_decay)
        losses.append(loss.item())
        if snapshot is not None and snapshot_every and (step + 1) % snapshot_every == 0 and step + 1 < steps:
            ema.metadata = metadata()
            snapshot(ema)
    ema.metadata = metadata()
    return ema.eval()


@dataclass
class Plan:
    """Sampled plans in data units.

    Args:
        states: Shape (samples, horizon, obs_dim).
        actions: Shape (samples, horizon, act_dim).
        nfe: The diffusion model's evaluations.
        choice: The sample to execute.
        value_evaluations: Gradient passes of a value guide's V̂ over the batch, plus 1 to rank the samples.
    """

    states: np.ndarray
    actions: np.ndarray
    nfe: int
    choice: int = 0
    value_evaluations: int = 0


def plan(model: Diffuser, state: np.ndarray, goal: np.ndarray | None = None, steps: int = 20,
         solver: str = "ddim", samples: int = 1, seed: int = 0, guide: ValueGuide | None = None) -> Plan:
    """Sample plans that start at ``state`` with ``steps`` solver steps on logSNR-uniform times.

    Args:
        model: The Diffuser.
        state: The current state, obs_dim entries.
        goal: For a model trained with ``goal_dims``: the first goal_dims state coordinates of the last step.
        steps: The solver steps.
        solver: A data-prediction solver of ``adaptstep.nn.solvers`` (``"ddim"``, ``"dpmpp2m"``, …).
        samples: The plans sampled.
        seed: The seed of the initial noise.
        guide: Value guidance (``adaptstep.planning.value_guidance``): every x̂0 is moved up V̂'s gradient and
            ``choice`` is the sample of highest V̂, as Diffuser executes its best-valued sample.

    Returns:
        The plans; ``nfe`` counts the diffusion model only, ``value_evaluations`` the value network.

    Raises:
        ValueError: If ``state`` or ``goal`` has the wrong length.
    """
    config, dim = model.config, model.transition_dim
    device = model.mean.device
    state = torch.as_tensor(np.asarray(state), dtype=torch.float32, device=device).reshape(-1)
    if len(state) != config.obs_dim:
        raise ValueError(f"state must have {config.obs_dim} entries, got {len(state)}")
    first = torch.cat([state, torch.zeros(config.act_dim, device=device)])
    values = model.normalize(first)[: config.obs_dim]
    if goal is not None:
        goal = torch.as_tensor(np.asarray(goal), dtype=torch.float32, device=device).reshape(-1)
        if len(goal) != config.goal_dims:
            raise ValueError(f"goal must have goal_dims = {config.goal_dims} entries (the model was trained with "
                             f"them), got {len(goal)}")
        last = torch.zeros(dim, device=device)
        last[: len(goal)] = goal
        values = torch.cat([values, model.normalize(last)[: len(goal)]])
    index = config.condition_index(goal=goal is not None).to(device)
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, config.horizon * dim, generator=generator).to(device)
    times = make_timesteps("logsnr_uniform", model.schedule, steps)
    denoiser = InpaintingDenoiser(model, index, values)
    if guide is not None:
        denoiser = guide.wrap(denoiser)
    with torch.no_grad():
        x, nfe = sample(denoiser, model.schedule, x, times, solver)
    x[:, index] = values
    choice, value_evaluations = 0, 0
    if guide is not None:
        choice, value_evaluations = guide.best(x), denoiser.value_evaluations + 1
    trajectories = model.unnormalize(x.reshape(samples, config.horizon, dim)).cpu().numpy()
    return Plan(trajectories[..., : config.obs_dim], trajectories[..., config.obs_dim:], nfe, choice,
                value_evaluations)
