"""Trajectory Diffuser: a fast autoregressive model proposes a state trajectory, a few diffusion steps optimise it.

After Huang et al., "Diffusion Models as Optimizers for Efficient Planning in Offline RL", ECCV 2024.

Condition c (``condition``): ``"goal"`` — the position reached at a window's last step (hindsight relabelling, the
goal convention of Diffuser's maze2d planner), standardised; ``"return"`` — the undiscounted return-to-go
Σ_{t' ≥ t} r_{t'} within the episode divided by ``returns_scale`` (1000 as in TD's code). Plans are over normalised
states only (per-dimension mean and standard deviation of the data); four parts are trained together:

- ``CausalTransformer`` (causal mask, unlike TD's code): s_{t+1} = s_t + f(s_{≤t}, c), MSE on normalised states.
  Planning rolls it out ``horizon − 1`` steps from the current state with c held fixed (TD also predicts the next
  return-to-go; here c is the condition of the whole plan). The proposal is deterministic.
- The state diffusion model: ``TemporalUnet`` with a condition embedding, v-prediction v = α_t ε − σ_t x0 on
  adaptstep's continuous VP schedule (as ``diffuser.py``), the first state kept clean (inpainted) in training and
  sampling (for goals also the goal at the last step, as Diffuser inpaints it), c replaced by the null condition
  with probability ``condition_dropout`` = 0.25 (classifier-free guidance, Ho & Salimans 2022). The dataset's own
  goals (``infos/goal``) are not used: maze2d data resamples the goal whenever it is reached, so a window
  conditioned on its first goal runs on past it, and a planner trained that way leaves the goal it has reached.
- ``InverseDynamics`` a_t = f(s_t, s_{t+1}) (MSE on normalised actions; outputs clipped to the data's range).
- ``Critic`` Q(s, a) regressed on the data's discounted return-to-go (γ = ``discount``), standardised. For goals
  it is not goal-conditioned: the data's rewards follow the data's goals, not the relabelled ones, so on maze2d
  it only ranks refinements of one proposal by the data's general reward-to-go.

Planning with budget k (1 ≤ k ≤ ``max_steps`` = K): the grid is K + 1 logSNR-uniform times from t_max to t_min;
the proposal x is noised to t_k = grid[K − k] (the k-th time counting from the clean end), x_t = α x + σ ε with
``samples`` independent ε (TD's code denoises the proposal without noising it; on the default linear schedule
with K = 20, k = 1, 2, 5 give σ/α = 0.017, 0.027, 0.115, against ≈ 0.085 at TD's t = 4 of 100), and k steps of
``adaptstep.nn.solvers.sample`` run with x̂0 = α x_t − σ_t v̂ under guidance v̂ = v̂_∅ + w (v̂_c − v̂_∅),
clipped to ±5 and the inpainted entries written. k = K starts at t_max, i.e. sampling from noise as Diffuser does. The
conditional and unconditional rows go through the network in one batch but count as 2 evaluations per step:
``nfe`` = 2k (k when w = 1, which evaluates the conditional rows only); the proposal's transformer calls are not
counted. ``Plan.actions`` are the inverse dynamics of consecutive plan states (the last one repeated). The critic
scores every plan's first action; ``choice`` is drawn from softmax(Q/``temperature``) (Q in standard deviations of
the return-to-go) with the plan's seed (``selection="softmax"``, TD's
rule) or is the argmax (``"argmax"``). ``act`` maps the real current state and the chosen plan's next state
through the inverse dynamics, so execution is closed loop.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from adaptstep.core.settings import require_int
from adaptstep.nn.checkpoints import load_checkpoint, save_checkpoint
from adaptstep.nn.device import resolve_device
from adaptstep.nn.schedules import make_noise_schedule
from adaptstep.nn.solvers import SOLVERS, sample
from adaptstep.nn.timesteps import make_timesteps
from adaptstep.nn.training import check_training_settings, loss_curve, training_step
from adaptstep.planning.datasets import OfflineDataset
from adaptstep.planning.diffuser import Plan, trajectory_starts
from adaptstep.planning.sequence_models import CausalTransformer, Critic, InverseDynamics
from adaptstep.planning.temporal_unet import TemporalUnet

CONDITIONS = {"goal": 2, "return": 1}  # condition → its dimension
SELECTIONS = ("softmax", "argmax")
PARTS = ("diffusion", "transformer", "inverse_dynamics", "critic")


@dataclass(frozen=True)
class TrajectoryDiffuserConfig:
    """The architecture and planning settings of a ``TrajectoryDiffuser`` (see the module's description).

    Args:
        obs_dim: The state's dimension.
        act_dim: The action's dimension.
        horizon: The plan's steps (>= 2).
        condition: ``"goal"`` or ``"return"``.
        dim: The U-Net's base width.
        dim_mults: The width multipliers of the U-Net's resolutions.
        width: The transformer's token width.
        layers: The transformer's layers.
        heads: The transformer's attention heads.
        hidden: The hidden width of the inverse dynamics and the critic.
        schedule: The VP noise schedule's name.
        max_steps: K, the largest budget.
        returns_scale: The divisor of the return condition (> 0).
        discount: γ of the critic's return-to-go, in [0, 1].
        target_return: The return condition used when ``plan`` gets ``condition=None`` (raw units).
        guidance: w of classifier-free guidance (>= 0).
        solver: The solver of ``adaptstep.nn.solvers``.
        samples: The plans per call.
        selection: ``"softmax"`` or ``"argmax"``.
        temperature: The softmax's temperature (> 0).

    Raises:
        ValueError: If a field is out of range.
    """

    obs_dim: int
    act_dim: int
    horizon: int
    condition: str
    dim: int = 32
    dim_mults: tuple[int, ...] = (1, 2, 4)
    width: int = 128
    layers: int = 2
    heads: int = 4
    hidden: int = 256
    schedule: str = "linear"
    max_steps: int = 20
    returns_scale: float = 1000.0
    discount: float = 0.99
    target_return: float = 0.0
    guidance: float = 1.2
    solver: str = "ddim"
    samples: int = 16
    selection: str = "softmax"
    temperature: float = 1.0

    def __post_init__(self) -> None:
        check_condition(self.condition)
        require_int("max_steps", self.max_steps)
        require_int("samples", self.samples)
        if self.horizon < 2:
            raise ValueError(f"horizon must be >= 2, got {self.horizon}")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {self.solver!r}")
        if self.selection not in SELECTIONS:
            raise ValueError(f"selection must be one of {SELECTIONS}, got {self.selection!r}")
        if not (self.guidance >= 0 and self.temperature > 0 and self.returns_scale > 0 and 0 <= self.discount <= 1):
            raise ValueError("need guidance >= 0, temperature > 0, returns_scale > 0 and 0 <= discount <= 1, got "
                             f"{self.guidance}, {self.temperature}, {self.returns_scale}, {self.discount}")

    @property
    def condition_dim(self) -> int:
        """The condition's dimension (goal: 2, return: 1)."""
        return CONDITIONS[self.condition]

    def inpainted_index(self) -> torch.Tensor:
        """Flat positions of the state plan kept clean.

        They are the first state, and for goals the goal's coordinates (the first ``condition_dim`` state entries)
        at the last step.
        """
        index = torch.arange(self.obs_dim)
        if self.condition == "goal":
            index = torch.cat([index, (self.horizon - 1) * self.obs_dim + torch.arange(self.condition_dim)])
        return index


def check_condition(condition: str) -> None:
    """Check that ``condition`` is a key of ``CONDITIONS``.

    Raises:
        ValueError: If it is not.
    """
    if condition not in CONDITIONS:
        raise ValueError(f"condition must be one of {sorted(CONDITIONS)}, got {condition!r}")


def returns_to_go(dataset: OfflineDataset, discount: float) -> np.ndarray:
    """R_t = Σ_{t' ≥ t} γ^{t'−t} r_{t'} within each episode."""
    rewards, result = np.asarray(dataset.rewards, dtype=np.float64), np.zeros(len(dataset))
    for episode in dataset.episodes():
        running = 0.0
        for index in range(episode.stop - 1, episode.start - 1, -1):
            running = rewards[index] + discount * running
            result[index] = running
    return result


class GuidedInpaintingDenoiser:
    """The denoiser protocol (``predict_x0``) for the state diffusion model with classifier-free guidance.

    Args:
        model: The Trajectory Diffuser.
        condition: The model-unit condition, shape (1, condition_dim).
        index: The flat positions of ``values``.
        values: The normalised values (first state, and the goal at the last step) written into x and x̂0.
        guidance: w of classifier-free guidance.
        clip: x̂0 is clipped to ±``clip``.
    """

    def __init__(self, model: TrajectoryDiffuser, condition: torch.Tensor, index: torch.Tensor, values: torch.Tensor,
                 guidance: float, clip: float = 5.0) -> None:
        self.model, self.condition, self.guidance, self.clip = model, condition, guidance, clip
        self.index, self.values = index, values

    @property
    def evaluations_per_call(self) -> int:
        """The network evaluations one ``predict_x0`` counts: 1 when w = 1, else 2."""
        return 1 if self.guidance == 1 else 2

    def predict_x0(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The guided x̂0 = α x_t − σ_t v̂ with the fixed entries written, clipped."""
        model, rows = self.model, len(x)
        x = x.clone()
        x[:, self.index] = self.values
        t = torch.as_tensor(t, dtype=torch.float64, device=x.device).expand(rows)
        condition = self.condition.expand(rows, -1)
        if self.evaluations_per_call == 1:
            v = model.velocity(x, t, condition)
        else:
            keep = torch.arange(2 * rows, device=x.device) < rows
            v_conditional, v_null = model.velocity(x.repeat(2, 1), t.repeat(2), condition.repeat(2, 1), keep).chunk(2)
            v = v_null + self.guidance * (v_conditional - v_null)
        alpha = model.schedule.alpha(t).to(x.dtype)[:, None]
        sigma = model.schedule.sigma(t).to(x.dtype)[:, None]
        x0 = (alpha * x - sigma * v).clamp(-self.clip, self.clip)
        x0[:, self.index] = self.values
        return x0


class TrajectoryDiffuser(nn.Module):
    """The four trained parts, the data's normalisation constants (buffers) and the planner interface.

    Args:
        config: The architecture and planning settings.
    """

    def __init__(self, config: TrajectoryDiffuserConfig) -> None:
        super().__init__()
        self.config, self.metadata = config, {}
        obs_dim, act_dim, condition_dim = config.obs_dim, config.act_dim, config.condition_dim
        self.schedule = make_noise_schedule(config.schedule)
        self.network = TemporalUnet(obs_dim, config.horizon, config.dim, tuple(config.dim_mults),
                                    condition_dim=condition_dim)
        self.transformer = CausalTransformer(obs_dim, condition_dim, config.horizon, config.width, config.layers,
                                             config.heads)
        self.inverse_dynamics = InverseDynamics(obs_dim, act_dim, config.hidden)
        self.critic = Critic(obs_dim, act_dim, config.hidden)
        for name, size in (("state_mean", obs_dim), ("state_std", obs_dim), ("action_mean", act_dim),
                           ("action_std", act_dim), ("action_low", act_dim), ("action_high", act_dim),
                           ("condition_shift", condition_dim), ("condition_scale", condition_dim),
                           ("value_mean", 1), ("value_std", 1)):
            self.register_buffer(name, torch.zeros(size) if "mean" in name or "shift" in name else torch.ones(size))

    @property
    def horizon(self) -> int:
        """The plan's steps."""
        return self.config.horizon

    @property
    def obs_dim(self) -> int:
        """The state's dimension."""
        return self.config.obs_dim

    @property
    def act_dim(self) -> int:
        """The action's dimension."""
        return self.config.act_dim

    @property
    def condition(self) -> str:
        """``"goal"`` or ``"return"``."""
        return self.config.condition

    def parts(self) -> dict[str, nn.Module]:
        """The four trained parts by name (``PARTS``)."""
        return dict(zip(PARTS, (self.network, self.transformer, self.inverse_dynamics, self.critic)))

    def velocity(self, x: torch.Tensor, t: torch.Tensor, condition: torch.Tensor,
                 keep: torch.Tensor | None = None) -> torch.Tensor:
        """v̂ for flat normalised trajectories x (batch, horizon·obs_dim) at times t (batch,)."""
        trajectories = x.reshape(len(x), self.config.horizon, self.config.obs_dim)
        return self.network(trajectories, self.schedule.lambda_(t), condition, keep).reshape(len(x), -1)

    def normalize_state(self, states: torch.Tensor) -> torch.Tensor:
        """States in model units."""
        return (states - self.state_mean) / self.state_std

    def normalize_condition(self, condition: np.ndarray | None) -> torch.Tensor:
        """(1, condition_dim) model-unit condition; None means ``target_return`` for return conditioning."""
        config = self.config
        if condition is None:
            if config.condition == "goal":
                raise ValueError("condition must be the goal position (2 entries) for a goal-conditioned model, "
                                 "got None")
            condition = config.target_return
        values = torch.as_tensor(np.asarray(condition, dtype=np.float32), device=self.state_mean.device).reshape(-1)
        if len(values) != config.condition_dim or not bool(torch.isfinite(values).all()):
            raise ValueError(f"condition must hold {config.condition_dim} finite entries (the {config.condition}), "
                             f"got {np.asarray(condition).tolist()}")
        return ((values - self.condition_shift) / self.condition_scale)[None]

    def _state(self, state: np.ndarray) -> torch.Tensor:
        values = torch.as_tensor(np.asarray(state, dtype=np.float32), device=self.state_mean.device).reshape(-1)
        if len(values) != self.config.obs_dim:
            raise ValueError(f"state must have obs_dim = {self.config.obs_dim} entries, got {len(values)}")
        return self.normalize_state(values)

    def _actions(self, states: torch.Tensor, next_states: torch.Tensor) -> torch.Tensor:
        """Data-unit actions from normalised state pairs, clipped to the data's range."""
        actions = self.inverse_dynamics(states, next_states) * self.action_std + self.action_mean
        return torch.maximum(torch.minimum(actions, self.action_high), self.action_low)

    @torch.no_grad()
    def proposal(self, state: np.ndarray, condition: np.ndarray | None) -> np.ndarray:
        """The autoregressive model's (horizon, obs_dim) trajectory from ``state``, in data units."""
        states = self.transformer.rollout(self._state(state)[None], self.normalize_condition(condition),
                                          self.config.horizon - 1)
        return (states[0] * self.state_std + self.state_mean).cpu().numpy()

    @torch.no_grad()
    def plan(self, state: np.ndarray, condition: np.ndarray | None, budget: int, seed: int,
             samples: int | None = None) -> Plan:
        """Plans from the proposal partially noised to t_budget and refined with ``budget`` guided solver steps.

        Every plan starts from a fresh proposal.

        Args:
            state: The current state, in data units.
            condition: The goal, or the return-to-go; None for ``config.target_return`` with return conditioning.
            budget: k, in [1, ``max_steps``].
            seed: The seed of the noise and of the softmax choice.
            samples: The plans; None for ``config.samples``.
        """
        config, obs_dim, horizon = self.config, self.config.obs_dim, self.config.horizon
        if isinstance(budget, bool) or not (isinstance(budget, int) and 1 <= budget <= config.max_steps):
            raise ValueError(f"budget must be an int in [1, max_steps = {config.max_steps}], got {budget!r}")
        samples = require_int("samples", config.samples if samples is None else samples)
        first, condition = self._state(state), self.normalize_condition(condition)
        proposal = self.transformer.rollout(first[None], condition, horizon - 1).reshape(1, -1)
        device = first.device
        times = make_timesteps("logsnr_uniform", self.schedule, config.max_steps, device=device)
        times = times[config.max_steps - budget:]
        generator = torch.Generator().manual_seed(seed)
        noise = torch.randn(samples, horizon * obs_dim, generator=generator).to(device)
        alpha, sigma = self.schedule.alpha(times[0]).item(), self.schedule.sigma(times[0]).item()
        index, values = config.inpainted_index().to(device), first
        if config.condition == "goal":
            goal_dims = CONDITIONS["goal"]
            goal = condition[0] * self.condition_scale + self.condition_shift
            values = torch.cat([first, (goal - self.state_mean[:goal_dims]) / self.state_std[:goal_dims]])
        denoiser = GuidedInpaintingDenoiser(self, condition, index, values, config.guidance)
        x, calls = sample(denoiser, self.schedule, alpha * proposal + sigma * noise, times, config.solver)
        x[:, index] = values
        states = x.reshape(samples, horizon, obs_dim)
        actions = self._actions(states[:, :-1], states[:, 1:])
        actions = torch.cat([actions, actions[:, -1:]], dim=1)  # the last state has no successor: repeat
        values = self.critic(states[:, 0], (actions[:, 0] - self.action_mean) / self.action_std)
        if config.selection == "argmax":
            choice = int(values.argmax())
        else:
            weights = torch.softmax(values.cpu().double() / config.temperature, dim=0)
            choice = int(torch.multinomial(weights, 1, generator=generator))
        return Plan((states * self.state_std + self.state_mean).cpu().numpy(), actions.cpu().numpy(),
                    calls * denoiser.evaluations_per_call, choice)

    @torch.no_grad()
    def act(self, plan: Plan, state: np.ndarray, index: int) -> np.ndarray:
        """The action from the real ``state`` toward plan.states[choice, index + 1] (index clipped to the plan)."""
        if isinstance(index, bool) or not (isinstance(index, int) and index >= 0):
            raise ValueError(f"index must be an int >= 0, got {index!r}")
        target = plan.states[plan.choice, min(index, self.config.horizon - 2) + 1]
        action = self._actions(self._state(state), self._state(target))
        return action.cpu().numpy()

    def save(self, path: str | Path) -> None:
        """Config, weights, normalisation and metadata in one checkpoint, written atomically."""
        save_checkpoint(self, {"kind": "trajectory-diffuser", **asdict(self.config)}, self.metadata, path)

    @staticmethod
    def load(path: str | Path, device: str | torch.device = "auto", **options) -> TrajectoryDiffuser:
        """The saved model; ``options`` replace planning settings of its config (e.g. ``samples``, ``guidance``)."""
        def build(config: dict) -> TrajectoryDiffuser:
            config = {key: value for key, value in config.items() if key != "kind"}
            config = TrajectoryDiffuserConfig(**{**config, "dim_mults": tuple(config["dim_mults"]), **options})
            return TrajectoryDiffuser(config)

        return load_checkpoint(path, build, "trajectory diffuser", device)


def _conditions(dataset: OfflineDataset, condition: str, returns_scale: float,
                horizon: int) -> tuple[np.ndarray, ...]:
    """(raw condition of the window starting at each transition, shift, scale)."""
    if condition == "goal":
        last = np.minimum(np.arange(len(dataset)) + horizon - 1, len(dataset) - 1)
        goals = dataset.observations[last, : CONDITIONS["goal"]].astype(np.float64)
        return goals, goals.mean(0), np.maximum(goals.std(0), 1e-6)
    return returns_to_go(dataset, 1.0)[:, None], np.zeros(1), np.full(1, returns_scale)


def train_trajectory_diffuser(dataset: OfflineDataset, horizon: int = 32, condition: str = "return",
                              steps: int = 10_000, batch_size: int = 32, lr: float = 2e-4, dim: int = 32,
                              seed: int = 0, device: str | torch.device = "auto", progress: bool = False,
                              ema_decay: float = 0.995, condition_dropout: float = 0.25,
                              snapshot: Callable[[TrajectoryDiffuser], None] | None = None, snapshot_every: int = 0,
                              **settings) -> TrajectoryDiffuser:
    """Train the diffusion model, transformer, inverse dynamics and critic together on windows of transitions.

    Each part has its own Adam and EMA.

    Args:
        dataset: The offline dataset.
        horizon: The window's transitions, the plan's steps.
        condition: ``"goal"`` or ``"return"``.
        steps: The training steps (>= 1).
        batch_size: The minibatch size (>= 1).
        lr: The learning rate (> 0).
        dim: The U-Net's base width.
        seed: The seed of everything random.
        device: The torch device, ``"auto"`` for ``resolve_device``'s choice.
        progress: Show a progress bar.
        ema_decay: The EMA's decay cap, in [0, 1).
        condition_dropout: The probability of replacing c by the null condition in training.
        snapshot: Called with the EMA model (its ``metadata`` for the steps so far) every ``snapshot_every`` steps
            before the last, e.g. to save a training curve's checkpoints.
        snapshot_every: The steps between snapshots (0: none).
        **settings (Any): Further ``TrajectoryDiffuserConfig`` fields.

    Returns:
        The EMA model in eval mode with ``metadata`` (settings, final_losses, loss_curves, seconds).

    Raises:
        ValueError: If a setting is out of range.
    """
    check_condition(condition)
    check_training_settings(steps, batch_size, lr, ema_decay)
    require_int("snapshot_every", snapshot_every, minimum=0)
    if not 0 <= condition_dropout < 1:
        raise ValueError(f"condition_dropout must lie in [0, 1), got {condition_dropout!r}")
    device = resolve_device(device)
    config = TrajectoryDiffuserConfig(dataset.observations.shape[1], dataset.actions.shape[1], horizon, condition,
                                      dim, **settings)
    raw, shift, scale = _conditions(dataset, condition, config.returns_scale, horizon)
    if condition == "return" and "target_return" not in settings:
        config = TrajectoryDiffuserConfig(**{**asdict(config), "target_return": float(raw.max())})
    values = returns_to_go(dataset, config.discount)
    states = torch.as_tensor(dataset.observations, dtype=torch.float32)
    actions = torch.as_tensor(dataset.actions, dtype=torch.float32)
    starts = torch.as_tensor(trajectory_starts(dataset, horizon))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = TrajectoryDiffuser(config)
    constants = {"state_mean": states.mean(0), "state_std": states.std(0).clamp_min(1e-6),
                 "action_mean": actions.mean(0), "action_std": actions.std(0).clamp_min(1e-6),
                 "action_low": actions.min(0).values, "action_high": actions.max(0).values,
                 "condition_shift": torch.as_tensor(shift), "condition_scale": torch.as_tensor(scale),
                 "value_mean": torch.tensor([values.mean()]), "value_std": torch.tensor([max(values.std(), 1e-6)])}
    for name, value in constants.items():
        getattr(model, name).copy_(value)
    model = model.to(device)
    states, actions = model.normalize_state(states.to(device)), ((actions.to(device) - model.action_mean)
                                                                 / model.action_std)
    conditions = ((torch.as_tensor(raw, dtype=torch.float32).to(device) - model.condition_shift)
                  / model.condition_scale)
    values = ((torch.as_tensor(values, dtype=torch.float32).to(device) - model.value_mean) / model.value_std)
    ema = copy.deepcopy(model).requires_grad_(False)
    parts, ema_parts = model.parts(), ema.parts()
    optimizers = {name: torch.optim.Adam(part.parameters(), lr=lr, foreach=True) for name, part in parts.items()}
    generator, schedule, offsets = torch.Generator().manual_seed(seed), model.schedule, torch.arange(horizon)
    losses: dict[str, list[float]] = {name: [] for name in PARTS}
    started = time.perf_counter()

    def metadata() -> dict:
        done, tail = len(losses["diffusion"]), max(1, len(losses["diffusion"]) // 10)
        return {"config": asdict(config), "steps": done, "batch_size": batch_size, "lr": lr, "seed": seed,
                "ema_decay": ema_decay, "condition_dropout": condition_dropout, "transitions": len(dataset),
                "final_losses": {name: sum(curve[-tail:]) / tail for name, curve in losses.items()},
                "loss_curves": {name: loss_curve(curve) for name, curve in losses.items()},
                "seconds": time.perf_counter() - started}

    for step in tqdm(range(steps), desc="trajectory diffuser", disable=not progress, mininterval=1.0):
        window = starts[torch.randint(len(starts), (batch_size,), generator=generator)].to(device)
        rows = window[:, None] + offsets.to(device)
        s, a, c = states[rows], actions[rows], conditions[window]
        x0 = s.reshape(batch_size, -1)
        uniform = torch.rand(batch_size, generator=generator, dtype=torch.float64)
        t = (schedule.t_min + (schedule.t_max - schedule.t_min) * uniform).to(device)
        noise = torch.randn(x0.shape, generator=generator).to(device)
        keep = (torch.rand(batch_size, generator=generator) >= condition_dropout).to(device)
        alpha = schedule.alpha(t).to(torch.float32)[:, None]
        sigma = schedule.sigma(t).to(torch.float32)[:, None]
        x_t = alpha * x0 + sigma * noise
        clean = config.inpainted_index()
        x_t[:, clean] = x0[:, clean]
        step_losses = {
            "diffusion": torch.mean((model.velocity(x_t, t, c, keep) - (alpha * noise - sigma * x0)) ** 2),
            "transformer": torch.mean((model.transformer(s[:, :-1], c) - s[:, 1:]) ** 2),
            "inverse_dynamics": torch.mean((model.inverse_dynamics(s[:, :-1], s[:, 1:]) - a[:, :-1]) ** 2),
            "critic": torch.mean((model.critic(s, a) - values[rows]) ** 2),
        }
        for name, loss in step_losses.items():
            training_step(parts[name], ema_parts[name], optimizers[name], loss, step, ema_decay)
            losses[name].append(loss.item())
        if snapshot is not None and snapshot_every and (step + 1) % snapshot_every == 0 and step + 1 < steps:
            ema.metadata = metadata()
            snapshot(ema)
    ema.metadata = metadata()
    return ema.eval()
