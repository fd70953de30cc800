"""Value-guided planning for Diffuser (Janner et al. 2022, §3.2 and ``diffuser/sampling/functions.py``).

Value function: V̂(x_t, t) over noisy normalised trajectories (the Diffuser's flat layout and normalisation, the
first state clean as in training), regressed on the discounted return of the rest of the episode from the window's
first transition, G_i = Σ_k γ^k r_{i+k} (Diffuser's ``ValueDataset``, γ = 0.99), standardised with the targets'
mean and standard deviation. The network follows Diffuser's ``ValueFunction``: the temporal U-Net's down path (one
residual block per resolution) on the noise level's embedding, then an MLP from the flattened features and the
embedding to a scalar.

Guidance: Diffuser moves x_t by scale·Σ_t·∇V (Σ_t the DDPM posterior variance, ``scale_grad_by_std``)
``n_guide_steps`` times, re-evaluating ∇V at the moved point, and skips the last ``t_stopgrad`` steps. That is
classifier guidance (Dhariwal & Nichol 2021) toward p(x)·exp(scale·V). For data-prediction solvers the same target
adds scale·∇V to the score s, so Tweedie's x̂0 = (x_t + σ_t² s)/α_t moves by scale·σ_t²/α_t·∇V (as DPM-Solver's
classifier guidance does). Here x_t is moved n_guide_steps times, x ← x + scale·σ_t²·∇_x V̂(x, t), and x̂0 moves by
the total shift divided by α_t; the diffusion model is evaluated once, at the unmoved x_t (no extra NFE), and the
solver's own state is unchanged. Guidance stops where λ_t = log(α_t/σ_t) > ``stop_lambda`` = 1.5: Diffuser's
cosine schedule with 20 steps has λ = 2.41, 1.78 at the two unguided indices (t_stopgrad = 2) and 1.38 at the next.
Defaults scale = 0.1, n_guide_steps = 2 are Diffuser's locomotion config; V̂ is in standardised units here, whereas
Diffuser's values are raw returns (``normed=False``), so a raw-unit scale s corresponds to s·``value_std`` here.
Inpainted entries get no gradient and stay fixed. Every gradient is one forward and backward pass of V̂ over the
whole batch; ``GuidedDenoiser.value_evaluations`` counts them.
"""

from __future__ import annotations

import copy
import math
import numbers
import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from adaptstep.nn.device import resolve_device
from adaptstep.nn.training import check_training_settings, loss_curve, training_step
from adaptstep.planning.datasets import OfflineDataset
from adaptstep.planning.diffuser import Diffuser, InpaintingDenoiser, trajectory_starts
from adaptstep.planning.temporal_unet import ResidualTemporalBlock


def discounted_returns(dataset: OfflineDataset, discount: float = 0.99, termination_penalty: float = 0.0) -> np.ndarray:
    """G_i = r_i + γ G_{i+1} inside each episode (G = r at its last transition).

    Args:
        dataset: The offline dataset.
        discount: γ, in (0, 1].
        termination_penalty: Added to the reward of terminal transitions (Diffuser's locomotion values use −100).
    """
    check_discount(discount)
    rewards = dataset.rewards.astype(np.float64) + termination_penalty * dataset.terminals
    returns = np.empty_like(rewards)
    for episode in dataset.episodes():
        following = 0.0
        for i in range(episode.stop - 1, episode.start - 1, -1):
            following = returns[i] = rewards[i] + discount * following
    return returns


def check_discount(discount: float) -> None:
    """Check that ``discount`` is a number in (0, 1].

    Raises:
        ValueError: If it is not.
    """
    if not (isinstance(discount, numbers.Real) and 0 < discount <= 1):
        raise ValueError(f"discount must lie in (0, 1], got {discount!r}")


class ValueFunction(nn.Module):
    """V̂(x_t, t) in standardised units for flat normalised trajectories (batch, horizon·transition_dim).

    ``returns`` maps it to discounted returns.

    Args:
        model: The Diffuser whose layout, normalisation and schedule it shares; its horizon must be divisible by
            2^(len(dim_mults) − 1).
        dim: The base width.
        dim_mults: The width multipliers of the resolutions.
        frequencies: The sin/cos pairs of the noise level's features.
        value_mean: The targets' mean, in return units.
        value_std: The targets' standard deviation, in return units.

    Raises:
        ValueError: If the horizon is not divisible as required.
    """

    def __init__(self, model: Diffuser, dim: int = 32, dim_mults: tuple[int, ...] = (1, 2, 4), frequencies: int = 16,
                 value_mean: float = 0.0, value_std: float = 1.0) -> None:
        super().__init__()
        horizon, transition_dim = model.config.horizon, model.transition_dim
        if horizon % 2 ** (len(dim_mults) - 1):
            raise ValueError(f"horizon must be divisible by {2 ** (len(dim_mults) - 1)} for dim_mults {dim_mults}, "
                             f"got {horizon}")
        self.horizon, self.transition_dim, self.schedule, self.metadata = horizon, transition_dim, model.schedule, {}
        self.settings = {"dim": dim, "dim_mults": tuple(dim_mults), "frequencies": frequencies}  # to rebuild it
        self.register_buffer("frequencies", torch.exp(torch.linspace(math.log(1 / 8), math.log(8.0), frequencies)))
        self.register_buffer("value_mean", torch.tensor(float(value_mean)))
        self.register_buffer("value_std", torch.tensor(float(value_std)))
        self.embed = nn.Sequential(nn.Linear(2 * frequencies, 4 * dim), nn.Mish(), nn.Linear(4 * dim, dim))
        widths = [transition_dim, *(dim * m for m in dim_mults)]
        self.blocks = nn.ModuleList()
        for index, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:])):
            last = index == len(dim_mults) - 1
            self.blocks.append(nn.ModuleList([ResidualTemporalBlock(w_in, w_out, dim),
                                              nn.Identity() if last else nn.Conv1d(w_out, w_out, 3, 2, 1)]))
        features = widths[-1] * horizon // 2 ** (len(dim_mults) - 1)
        self.head = nn.Sequential(nn.Linear(features + dim, 4 * dim), nn.Mish(), nn.Linear(4 * dim, 1))

    def forward(self, x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        """Standardised V̂ of shape (batch,)."""
        t = torch.as_tensor(t, dtype=torch.float64, device=x.device).expand(len(x))
        angles = self.schedule.lambda_(t).reshape(-1, 1).to(self.frequencies.dtype) * self.frequencies
        embedding = self.embed(torch.cat([torch.sin(angles), torch.cos(angles)], dim=1))
        h = x.reshape(len(x), self.horizon, self.transition_dim).to(self.frequencies.dtype).transpose(1, 2)
        for block, downsample in self.blocks:
            h = downsample(block(h, embedding))
        return self.head(torch.cat([h.flatten(1), embedding], dim=1)).squeeze(1)

    def returns(self, x: torch.Tensor, t: torch.Tensor | float) -> torch.Tensor:
        """V̂ in return units: value_mean + value_std · V̂."""
        return self.value_mean + self.value_std * self(x, t)


def train_value(model: Diffuser, dataset: OfflineDataset, discount: float = 0.99, steps: int = 2000,
                batch_size: int = 64, lr: float = 2e-4, dim: int | None = None, termination_penalty: float = 0.0,
                seed: int = 0, ema_decay: float = 0.995, device: str | torch.device = "auto",
                progress: bool = False) -> ValueFunction:
    """Fit V̂ with the MSE to the standardised G of each window's first transition.

    The windows are noised with the Diffuser's schedule (t ~ U[t_min, t_max], x_t = α_t x0 + σ_t ε, conditioned
    entries clean as in ``train_diffuser``).

    Args:
        model: The trained Diffuser.
        dataset: The offline dataset it was trained on.
        discount: γ, in (0, 1].
        steps: The Adam steps (>= 1).
        batch_size: The minibatch size (>= 1).
        lr: The learning rate (> 0).
        dim: The base width; None for the Diffuser's.
        termination_penalty: Added to the reward of terminal transitions.
        seed: The seed of everything random.
        ema_decay: The EMA's decay cap, in [0, 1).
        device: The torch device, ``"auto"`` for ``resolve_device``'s choice.
        progress: Show a progress bar.

    Returns:
        The EMA network in eval mode, gradients off, with ``metadata`` (settings, value_mean, value_std,
        final_loss, loss_curve, seconds).

    Raises:
        ValueError: If a setting is out of range.
    """
    check_training_settings(steps, batch_size, lr, ema_decay)
    check_discount(discount)
    device = resolve_device(device)
    config = model.config
    data = torch.as_tensor(np.concatenate([dataset.observations, dataset.actions], axis=1), dtype=torch.float32)
    if data.shape[1] != model.transition_dim:
        raise ValueError(f"dataset transitions have {data.shape[1]} entries, the Diffuser's {model.transition_dim}")
    with torch.no_grad():
        data = model.normalize(data.to(model.mean.device)).cpu()
    starts = trajectory_starts(dataset, config.horizon)
    targets = discounted_returns(dataset, discount, termination_penalty)[starts]
    mean, std = float(targets.mean()), float(max(targets.std(), 1e-6))
    targets = torch.as_tensor((targets - mean) / std, dtype=torch.float32)
    starts = torch.as_tensor(starts)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        value = ValueFunction(model, config.dim if dim is None else dim, tuple(config.dim_mults),
                              value_mean=mean, value_std=std).to(device)
    ema = copy.deepcopy(value).requires_grad_(False)
    optimizer = torch.optim.Adam(value.parameters(), lr=lr, foreach=True)
    generator, schedule, offsets = torch.Generator().manual_seed(seed), model.schedule, torch.arange(config.horizon)
    index = config.condition_index(goal=config.goal_dims > 0).to(device)
    losses, started = [], time.perf_counter()
    for step in tqdm(range(steps), desc="value", disable=not progress, mininterval=1.0):
        batch = torch.randint(len(starts), (batch_size,), generator=generator)
        x0 = data[starts[batch][:, None] + offsets].reshape(batch_size, -1).to(device)
        uniform = torch.rand(batch_size, generator=generator, dtype=torch.float64)
        t = (schedule.t_min + (schedule.t_max - schedule.t_min) * uniform).to(device)
        noise = torch.randn(x0.shape, generator=generator).to(device)
        x_t = schedule.alpha(t).to(torch.float32)[:, None] * x0 + schedule.sigma(t).to(torch.float32)[:, None] * noise
        x_t[:, index] = x0[:, index]
        loss = torch.mean((value(x_t, t) - targets[batch].to(device)) ** 2)
        training_step(value, ema, optimizer, loss, step, ema_decay)
        losses.append(loss.item())
    tail = max(1, steps // 10)
    ema.metadata = {"discount": discount, "termination_penalty": termination_penalty, "steps": steps,
                    "batch_size": batch_size, "lr": lr, "seed": seed, "windows": len(starts), "value_mean": mean,
                    "value_std": std, "final_loss": sum(losses[-tail:]) / tail, "loss_curve": loss_curve(losses),
                    "seconds": time.perf_counter() - started}
    return ema.eval()


@dataclass(frozen=True)
class ValueGuide:
    """Guidance settings for ``diffuser.plan`` (see the module's description).

    Args:
        value: The trained ``ValueFunction``.
        scale: The guidance scale, in standardised value units (>= 0).
        n_guide_steps: The gradient steps per solver step (>= 0).
        stop_lambda: No guidance where λ_t > stop_lambda.

    Raises:
        ValueError: If a field is out of range.
    """

    value: ValueFunction
    scale: float = 0.1
    n_guide_steps: int = 2
    stop_lambda: float = 1.5

    def __post_init__(self) -> None:
        if not (isinstance(self.scale, numbers.Real) and math.isfinite(self.scale) and self.scale >= 0):
            raise ValueError(f"scale must be finite and >= 0, got {self.scale!r}")
        steps = self.n_guide_steps
        if isinstance(steps, bool) or not (isinstance(steps, int) and steps >= 0):
            raise ValueError(f"n_guide_steps must be an int >= 0, got {self.n_guide_steps!r}")
        if not (isinstance(self.stop_lambda, numbers.Real) and not math.isnan(self.stop_lambda)):
            raise ValueError(f"stop_lambda must be a number, got {self.stop_lambda!r}")

    def gradient(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """∇_x V̂(x, t), row by row (one forward and backward pass)."""
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            return torch.autograd.grad(self.value(x, t).sum(), x)[0]

    def wrap(self, denoiser: InpaintingDenoiser) -> GuidedDenoiser:
        """``denoiser`` with this guidance.

        Raises:
            ValueError: If the value function's (horizon, transition_dim) differs from the Diffuser's.
        """
        value, model = self.value, denoiser.model
        shapes = (value.horizon, value.transition_dim), (model.config.horizon, model.transition_dim)
        if shapes[0] != shapes[1]:
            raise ValueError(f"value function is for (horizon, transition_dim) = {shapes[0]}, the Diffuser has "
                             f"{shapes[1]}")
        return GuidedDenoiser(denoiser, self)

    def best(self, x: torch.Tensor) -> int:
        """argmax over rows of V̂ at the clean plans x (evaluated at the schedule's t_min)."""
        with torch.no_grad():
            return int(self.value(x, self.value.schedule.t_min).argmax())


class GuidedDenoiser:
    """An ``InpaintingDenoiser`` whose x̂0 is moved up V̂'s gradient (see the module's description).

    It counts ``value_evaluations``, the gradient passes of V̂ over the batch.

    Args:
        denoiser: The unguided denoiser.
        guide: The guidance settings.
    """

    def __init__(self, denoiser: InpaintingDenoiser, guide: ValueGuide) -> None:
        self.denoiser, self.guide, self.value_evaluations = denoiser, guide, 0

    def predict_x0(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The denoiser's x̂0 moved by the guidance's total shift divided by α_t (unchanged where λ_t is too high)."""
        x0 = self.denoiser.predict_x0(x, t)
        guide, schedule, index = self.guide, self.denoiser.model.schedule, self.denoiser.index
        t = torch.as_tensor(t, dtype=torch.float64, device=x.device).expand(len(x))
        active = schedule.lambda_(t) <= guide.stop_lambda
        if guide.scale == 0 or guide.n_guide_steps == 0 or not bool(active.any()):
            return x0
        step = (guide.scale * schedule.sigma(t) ** 2 * active).to(x.dtype)[:, None]
        start = x.clone()
        start[:, index] = self.denoiser.values
        moved = start
        for _ in range(guide.n_guide_steps):
            gradient = guide.gradient(moved, t)
            self.value_evaluations += 1
            gradient[:, index] = 0
            moved = moved + step * gradient
        return x0 + (moved - start) / schedule.alpha(t).to(x.dtype)[:, None]
