"""A Video2Act-style dual-system policy (Jia et al. 2025, arXiv 2512.03044; code ``jiayueru/Video2Act``).

**System 2 (slow)** is the frozen ``VideoStreams`` over the last ``history`` frames: a video diffusion model's
feature maps, as a spatial stream (Sobel boundaries of the newest frame's features) and a motion stream (temporal
band-pass of all frames' features). Each stream is cut into patches (a spatial stream of C × h × w into
(h/p)(w/p) patches of C·p² values; the motion stream into tubelets of p_t frames × p × p, as ViViT's tubelet
embedding), and each patch goes through its stream's projector, LayerNorm → Linear → GELU → Linear (Video2Act's
``mlp2x_gelu`` adaptor), plus a learned embedding per stream and patch that starts as the patch grid's fixed
sin-cos embedding (as DiT and MAE embed positions), giving tokens of width D. ``system2`` returns
these tokens; a caller may cache them and reuse them for several System 1 calls, as Video2Act's evaluation cache
recomputes its video features once every 8 calls.

**System 1 (fast)** encodes the last ``obs_horizon`` proprio vectors (min-max normalised) with an MLP into e (B, D),
which is both the DiT's global condition and one more context token (e + a learned proprio embedding), and samples a
normalised action chunk with the ``DiTActionHead`` (AdaLN-Zero, cross-attention to the tokens) in a few
DPM-Solver++(2M) steps (Video2Act and RDT sample with 5), through ``adaptstep.policies.action_diffusion``. The
cross-attention keys and values of the context are computed once per call, not once per solver step.

**Training** (``train_dual_system``): the video model is trained first and frozen (``train_video_model``); its
feature map of every demo frame is computed once (``VideoDiffusion.episode_features``, stored as float16), and each
batch gathers the maps of its windows (``window_indices`` with ``history`` frames, Diffusion Policy's padding) and
filters them into the two streams, which equals System 2 on those windows. The projectors, proprio encoder and DiT
train on the chunk diffusion ε-loss (cosine noise schedule), with Adam, a cosine learning-rate decay to zero,
gradient clipping and an EMA of the weights (``training_step``). With ``motion_dropout`` = p a share p of the
training samples gets a zero motion stream, what a still window (an episode's first call) gives; this makes the
head read the target from the spatial stream instead of continuing the motion it sees (the "copycat" shortcut of
imitation from observation histories, Wen et al. 2020). With ``first_call_weight`` = w an episode's first window,
the one an episode's first call sees (all frames alike, the arm at rest), is drawn w times as often as any other:
that call alone must find the target, and it is one window in 50; where the demos record ``target_jumps``, the
first window after each jump of the target counts as a first window too; where the demos' expert reacts late
(``expert_waits``), the first window it reacts in does, and the windows it waits in are never drawn
(``first_window_weights``). With ``stale_calls`` = m each sample's System-2 window is taken j·action_steps steps
earlier (j uniform in 0 … m, clipped at the episode's start and at the step the target last jumped,
``window_scene_starts``) while its proprio and actions stay current: the stale tokens System 1 meets when System 2
is refreshed every k <= m + 1 calls. The clip keeps every sample's target the one its actions
steer to: a window from before the jump would teach the head to leave a target it sees for one it cannot.
With ``proprio_dropout`` = p a share p of the samples gets every proprio vector at the middle of its range (0 once
normalised; for the (cos q, sin q) pairs a point off the unit circle, so no real state reads alike): those samples'
actions must come from the tokens alone, where the arm and the target are both seen. In static demonstrations the
joint state beside the target tells where the target is once the arm rests there, and a head trained without it
stops reading the target from System 2 past an episode's start (causal confusion, de Haan et al. 2019; measured by
``diagnostics.target_sensitivity``).

**Departures from Video2Act:** its System 1 is RDT-1B (timestep as a prefix token, cross-attention alternating
between language and image/video tokens, sample prediction) on Wan2.2 features of VAE latents; here a 4-block DiT
with AdaLN-Zero predicts ε from the features of a small pixel-space video model trained on the demos, without
language or a separate image encoder.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from adaptstep.nn.checkpoints import load_checkpoint, save_checkpoint
from adaptstep.nn.device import resolve_device
from adaptstep.nn.solvers import SOLVERS
from adaptstep.nn.training import check_training_settings, loss_curve, training_step
from adaptstep.policies.action_diffusion import MinMaxNormalizer, chunk_diffusion_loss, chunk_schedule, sample_chunks
from adaptstep.policies.dit import DiTActionHead
from adaptstep.policies.streams import VideoStreams
from adaptstep.policies.video_model import VideoDiffusion, VideoModelConfig
from adaptstep.policies.windows import demo_tensors, first_window_weights, training_windows, window_scene_starts
from adaptstep.zoo import zoo_path


@dataclass(frozen=True)
class DualSystemConfig:
    """Everything needed to rebuild a ``DualSystemPolicy`` around its video model (see the module's description).

    Args:
        proprio_dim: The proprioception's dimension P.
        action_dim: The action's dimension A.
        obs_horizon: T_o, the proprio steps System 1 sees.
        pred_horizon: T_p, a chunk's steps.
        action_steps: The actions executed per System 1 call, from chunk position T_o − 1 on (<= T_p − T_o + 1).
        image_size: The camera image's side, in pixels.
        history: The frames System 2 sees (>= ``obs_horizon``).
        fps: The frame rate, for the motion stream's band-pass.
        band: The frequencies the motion stream's band-pass keeps, in Hz.
        spatial_patch: p of the spatial stream's p × p patches.
        motion_patch: (p_t, p) of the motion stream's tubelets.
        width: The token width D.
        depth: The DiT blocks.
        heads: The DiT's attention heads.
        sampling_steps: The action head's solver steps.
        solver: The action head's solver, one of ``SOLVERS``.
        motion_dropout: Training only: the share of samples whose motion stream is zeroed, in [0, 1).
        first_call_weight: Training only: how many times as often a scene's first window is drawn (>= 1).
        stale_calls: Training only: System 2's window is from j ∈ {0 … stale_calls} calls earlier (>= 0).
        proprio_dropout: Training only: the share of samples whose proprio is set to its range's middle, in [0, 1).

    Raises:
        ValueError: If a field is out of range.
    """

    proprio_dim: int
    action_dim: int
    obs_horizon: int = 2
    pred_horizon: int = 16
    action_steps: int = 4
    image_size: int = 64
    history: int = 8
    fps: float = 50.0
    band: tuple[float, float] = (3.0, 22.0)
    spatial_patch: int = 2
    motion_patch: tuple[int, int] = (2, 4)
    width: int = 128
    depth: int = 4
    heads: int = 4
    sampling_steps: int = 5
    solver: str = "dpmpp2m"
    motion_dropout: float = 0.0
    first_call_weight: float = 1.0
    stale_calls: int = 0
    proprio_dropout: float = 0.0

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, list):
                object.__setattr__(self, field.name, tuple(value))  # lists come back from a checkpoint's config
        for name in ("proprio_dim", "action_dim", "obs_horizon", "pred_horizon", "action_steps", "image_size",
                     "history", "spatial_patch", "width", "depth", "heads", "sampling_steps"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if self.action_steps > self.pred_horizon - self.obs_horizon + 1:
            raise ValueError(f"action_steps must be <= pred_horizon - obs_horizon + 1 = "
                             f"{self.pred_horizon - self.obs_horizon + 1}, got {self.action_steps}")
        if self.history < self.obs_horizon:
            raise ValueError(f"history must be >= obs_horizon = {self.obs_horizon}, got {self.history}")
        if not (len(self.motion_patch) == 2 and all(isinstance(p, int) and p >= 1 for p in self.motion_patch)):
            raise ValueError(f"motion_patch must be a pair of ints >= 1 (frames, pixels), got {self.motion_patch!r}")
        if self.solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {self.solver!r}")
        for name in ("motion_dropout", "proprio_dropout"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, (int, float)) and 0 <= value < 1):
                raise ValueError(f"{name} must be a number in [0, 1), got {value!r}")
        if isinstance(self.first_call_weight, bool) or not (isinstance(self.first_call_weight, (int, float))
                                                             and 1 <= self.first_call_weight < float("inf")):
            raise ValueError(f"first_call_weight must be a finite number >= 1, got {self.first_call_weight!r}")
        if isinstance(self.stale_calls, bool) or not (isinstance(self.stale_calls, int) and self.stale_calls >= 0):
            raise ValueError(f"stale_calls must be an int >= 0, got {self.stale_calls!r}")

    @property
    def chunk_shape(self) -> tuple[int, int]:
        """A chunk's (pred_horizon, action_dim)."""
        return self.pred_horizon, self.action_dim


def sincos_grid_embedding(grid: tuple[int, ...], width: int) -> torch.Tensor:
    """(1, prod(grid), width) fixed sin-cos position embedding of a patch grid.

    MAE's and DiT's 2-D embedding, extended to any number of axes: the width is split evenly (in even parts) over
    the axes longer than 1, and axis a's part of the patch at index i is [sin(i·ω_k), cos(i·ω_k)] with
    ω_k = 10000^(−k/(d_a/2)); an odd remainder of the width is zero.
    """
    axes = [axis for axis, size in enumerate(grid) if size > 1] or [0]
    parts = [2 * (width // (2 * len(axes)))] * len(axes)
    parts[0] += 2 * ((width - sum(parts)) // 2)
    coordinates = torch.stack(torch.meshgrid(*(torch.arange(size, dtype=torch.float64) for size in grid),
                                             indexing="ij"), dim=-1).reshape(-1, len(grid))
    columns = []
    for axis, dims in zip(axes, parts):
        frequencies = 10_000.0 ** (-torch.arange(dims // 2, dtype=torch.float64) / max(dims // 2, 1))
        angles = coordinates[:, axis, None] * frequencies
        columns += [torch.sin(angles), torch.cos(angles)]
    columns.append(torch.zeros(len(coordinates), width - sum(parts), dtype=torch.float64))
    return torch.cat(columns, dim=1)[None].to(torch.float32)


class StreamProjector(nn.Module):
    """Tokens (B, N, D) of a stream's feature maps (B, [T,] C, h, w).

    Non-overlapping (p_t ×) p × p patches, each flattened, go through LayerNorm → Linear → GELU → Linear, plus a
    learned embedding per patch that starts as the fixed sin-cos embedding of the patch's grid position
    (``sincos_grid_embedding``), so the head can read where a patch lies from the first step on.

    Args:
        shape: A sample's feature-map shape, (C, h, w) or (T, C, h, w).
        patch: p, the patch side in feature pixels.
        width: The token width D.
        frames_per_patch: p_t, the frames per tubelet.

    Raises:
        ValueError: If a size is not divisible by its patch size.
    """

    def __init__(self, shape: tuple[int, ...], patch: int, width: int, frames_per_patch: int = 1) -> None:
        super().__init__()
        frames, channels, height, width_in = (1, *shape) if len(shape) == 3 else shape
        for name, size, step in (("frames", frames, frames_per_patch), ("height", height, patch),
                                 ("width", width_in, patch)):
            if size % step:
                raise ValueError(f"the stream's {name} {size} must be divisible by its patch size {step}")
        self.patch, self.frames_per_patch = patch, frames_per_patch
        self.grid = (frames // frames_per_patch, height // patch, width_in // patch)
        size = channels * frames_per_patch * patch * patch
        self.mlp = nn.Sequential(nn.LayerNorm(size), nn.Linear(size, width), nn.GELU(), nn.Linear(width, width))
        self.embedding = nn.Parameter(sincos_grid_embedding(self.grid, width))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Tokens (B, N, D) of feature maps (B, [T,] C, h, w)."""
        batch = len(features)
        x = features.reshape(batch, -1, *features.shape[-3:])  # (B, T, C, h, w)
        (frames, rows, columns), pt, p = self.grid, self.frames_per_patch, self.patch
        x = x.reshape(batch, frames, pt, x.shape[2], rows, p, columns, p)
        x = x.permute(0, 1, 4, 6, 2, 3, 5, 7).reshape(batch, frames * rows * columns, -1)
        return self.mlp(x) + self.embedding


class ProprioEncoder(nn.Module):
    """e = MLP(normalised proprio of the T_o steps, flattened), and e + a learned embedding as a context token.

    e is the DiT's global condition.

    Args:
        inputs: T_o · P, the flattened proprio's size.
        width: The width D.
    """

    def __init__(self, inputs: int, width: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(inputs, width), nn.SiLU(), nn.Linear(width, width))
        self.embedding = nn.Parameter(torch.randn(1, 1, width) * 0.02)

    def forward(self, proprio: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(e (B, D), the context token (B, 1, D)) of normalised proprio (B, T_o, P)."""
        encoded = self.mlp(proprio.flatten(1))
        return encoded, encoded[:, None] + self.embedding


class DualSystemPolicy(nn.Module):
    """System 2 and System 1 of the dual system, with the action and proprio normalisers.

    System 2 is the frozen ``VideoStreams`` with trainable stream projectors; System 1 the proprio encoder and the
    DiT head.

    Args:
        config: The architecture.
        video_model: The trained video model (frozen here); its image size must be the config's.
        action_normalizer: The actions' normaliser; None for a placeholder a checkpoint's weights overwrite.
        proprio_normalizer: The proprioception's normaliser; None likewise.

    Raises:
        ValueError: If the video model's image size differs from the config's.
    """

    def __init__(self, config: DualSystemConfig, video_model: VideoDiffusion,
                 action_normalizer: MinMaxNormalizer | None = None,
                 proprio_normalizer: MinMaxNormalizer | None = None) -> None:
        super().__init__()
        if video_model.config.image_size != config.image_size:
            raise ValueError(f"video_model.config.image_size must equal image_size = {config.image_size}, got "
                             f"{video_model.config.image_size}")
        self.config, self.metadata, self.schedule = config, {}, chunk_schedule()
        self.streams = VideoStreams(video_model, config.history, config.fps, config.band)
        shapes, width = self.streams.output_shapes, config.width
        frames_per_patch, motion_patch = config.motion_patch
        self.projectors = nn.ModuleDict({
            "spatial": StreamProjector(shapes["spatial"], config.spatial_patch, width),
            "motion": StreamProjector(shapes["motion"], motion_patch, width, frames_per_patch)})
        self.proprio_encoder = ProprioEncoder(config.obs_horizon * config.proprio_dim, width)
        self.head = DiTActionHead(config.action_dim, config.pred_horizon, width, width, width, config.depth,
                                  config.heads)
        self.action_normalizer = action_normalizer or MinMaxNormalizer.placeholder(config.action_dim)
        self.proprio_normalizer = proprio_normalizer or MinMaxNormalizer.placeholder(config.proprio_dim)

    @property
    def device(self) -> torch.device:
        """The device of the policy's weights."""
        return self.action_normalizer.low.device

    @property
    def video_model(self) -> VideoDiffusion:
        """The frozen video model of System 2."""
        return self.streams.video_model

    def trainable(self) -> nn.ModuleList:
        """The modules that train (everything but the frozen video model and the normalisers)."""
        return nn.ModuleList([self.projectors, self.proprio_encoder, self.head])

    def project(self, streams: dict[str, torch.Tensor]) -> torch.Tensor:
        """Video tokens (B, N, D) of raw stream features {"spatial": (B, C, h, w), "motion": (B, T, C, h, w)}."""
        return torch.cat([self.projectors[name](streams[name].to(torch.float32)) for name in self.projectors], dim=1)

    @property
    def system2_frames(self) -> int:
        """Frames per System 2 call: ``history`` plus the video model's context frames before them."""
        return self.streams.window

    @torch.no_grad()
    def system2(self, frames: np.ndarray | torch.Tensor) -> torch.Tensor:
        """The slow call: video tokens (B, N, D) of uint8 ``frames`` (B, system2_frames, S, S, 3), oldest first."""
        return self.project(self.streams(torch.as_tensor(frames).to(self.device)))

    def condition(self, tokens: torch.Tensor, proprio: np.ndarray | torch.Tensor) -> dict[str, torch.Tensor]:
        """The DiT's condition: {"tokens": video tokens + the proprio token, "global": proprio encoding}.

        Args:
            tokens: System 2's tokens, shape (B, N, D).
            proprio: Raw proprioception, shape (B, T_o, P).
        """
        config = self.config
        proprio = torch.as_tensor(proprio, dtype=torch.float32, device=self.device)
        if tokens.ndim != 3 or tokens.shape[2] != config.width:
            raise ValueError(f"tokens must have shape (B, N, width = {config.width}) as system2 returns them, got "
                             f"{tuple(tokens.shape)}")
        if tuple(proprio.shape) != (len(tokens), config.obs_horizon, config.proprio_dim):
            raise ValueError(f"proprio must have shape (B, obs_horizon, proprio_dim) = "
                             f"{(len(tokens), config.obs_horizon, config.proprio_dim)} to match tokens, got "
                             f"{tuple(proprio.shape)}")
        encoded, token = self.proprio_encoder(self.proprio_normalizer.normalize(proprio))
        return {"tokens": torch.cat([tokens, token], dim=1), "global": encoded}

    @torch.no_grad()
    def system1(self, tokens: torch.Tensor, proprio: np.ndarray | torch.Tensor, steps: int | None = None,
                solver: str | None = None, seed: int | None = None) -> tuple[np.ndarray, int]:
        """The fast call: action chunks from System 2's tokens and the proprioception.

        Args:
            tokens: System 2's tokens, shape (B, N, D).
            proprio: Raw proprioception, shape (B, obs_horizon, P).
            steps: The solver steps; None for the config's (5).
            solver: The solver; None for the config's (DPM-Solver++(2M)).
            seed: Seeds the initial noise; None for torch's global generator.

        Returns:
            (chunks (B, pred_horizon, action_dim) float32 in data units, NFE); the caller executes
            ``chunks[:, T_o − 1:][:, :action_steps]``.
        """
        condition = self.condition(tokens.to(self.device), proprio)
        condition = {"memory": self.head.context_memory(condition["tokens"]), "global": condition["global"]}
        steps = self.config.sampling_steps if steps is None else steps
        chunks, nfe = sample_chunks(self.head, condition, len(tokens), self.config.chunk_shape, self.schedule, steps,
                                    solver or self.config.solver, seed)
        return self.action_normalizer.unnormalize(chunks).cpu().numpy(), nfe

    def compute_loss(self, batch: dict, generator: torch.Generator | None = None) -> torch.Tensor:
        """ε-loss on a training batch.

        Args:
            batch: {"streams": raw System 2 features as ``VideoStreams`` returns them, "proprio": (B, T_o, P),
                "actions": (B, T_p, A) in data units}.
            generator: Drives the times and noise.
        """
        actions = torch.as_tensor(batch["actions"], dtype=torch.float32, device=self.device)
        if tuple(actions.shape[1:]) != self.config.chunk_shape:
            raise ValueError(f"actions must have shape (B, pred_horizon, action_dim) = (B, {self.config.chunk_shape}),"
                             f" got {tuple(actions.shape)}")
        condition = self.condition(self.project(batch["streams"]), batch["proprio"])
        return chunk_diffusion_loss(self.head, self.action_normalizer.normalize(actions), condition, self.schedule,
                                    generator)


def train_dual_system(demos, video_model: VideoDiffusion | None, steps: int = 5000, batch_size: int = 64,
                      lr: float = 3e-4, seed: int = 0, device: str | torch.device = "auto", progress: bool = False,
                      ema_decay: float = 0.995, init: DualSystemPolicy | None = None, **config) -> DualSystemPolicy:
    """Train the projectors, proprio encoder and DiT of a ``DualSystemPolicy`` over a frozen video model.

    System 2's per-frame features are computed once first.

    Args:
        demos (Demonstrations): Images (N, S, S, 3) uint8, proprio (N, P), actions (N, A), episode_ends (E,).
        video_model: The frozen video model (``train_video_model`` on the same demos); None with ``init``.
        steps: The optimiser steps.
        batch_size: The windows per batch.
        lr: Adam's learning rate, decayed to zero on a cosine.
        seed: Seeds batches, times and noise.
        device: The torch device, ``"auto"`` for CUDA when present.
        progress: Show a progress bar.
        ema_decay: The decay of the weights' exponential moving average.
        init: A trained policy to warm-start from (all its weights, normalisers and config): DAgger's next
            iteration. None to start afresh.
        **config (Any): ``DualSystemConfig`` fields to override; with ``init``, only fields that keep the weights'
            shapes, such as ``first_call_weight``.

    Returns:
        The EMA policy in eval mode with ``metadata`` (settings, feature_seconds, final_loss, loss_curve, seconds).

    Raises:
        ValueError: If a setting is out of range, not exactly one of ``video_model`` and ``init`` is given, or
            ``config`` or the demos do not fit ``init``'s shapes.
    """
    check_training_settings(steps, batch_size, lr, ema_decay)
    if (video_model is None) == (init is None):
        raise ValueError("pass exactly one of video_model (a new policy) and init (a policy to warm-start from)")
    device = resolve_device(device)
    images, proprio, actions = demo_tensors(demos)
    if init is None:
        config = DualSystemConfig(proprio_dim=proprio.shape[1], action_dim=actions.shape[1],
                                  **{"image_size": images.shape[1], **config})
    else:
        config = _warm_start_config(init.config, config, proprio.shape[1], actions.shape[1], images.shape[1])
    frame_index, act_index = training_windows(demos, config.obs_horizon, config.pred_horizon, history=config.history)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        if init is None:
            policy = DualSystemPolicy(config, copy.deepcopy(video_model), MinMaxNormalizer.fit(actions),
                                      MinMaxNormalizer.fit(proprio)).to(device)
        else:
            video_model = init.video_model
            policy = DualSystemPolicy(config, copy.deepcopy(video_model)).to(device)
            try:
                policy.load_state_dict(init.state_dict())
            except RuntimeError as error:
                raise ValueError(f"config must keep the shapes of init's weights: {error}") from error
    started = time.perf_counter()
    features = policy.video_model.episode_features(images.to(device), demos.episode_ends, progress)
    feature_seconds = time.perf_counter() - started
    ema = copy.deepcopy(policy).requires_grad_(False)
    model, averaged = policy.trainable(), ema.trainable()
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    lr_decay = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    proprio_index = frame_index[:, -config.obs_horizon:]
    target_jumps, expert_waits = getattr(demos, "target_jumps", None), getattr(demos, "expert_waits", None)
    weights = first_window_weights(demos.episode_ends, config.first_call_weight, target_jumps, expert_waits)
    scene_starts = window_scene_starts(demos.episode_ends, target_jumps)
    blind_proprio = policy.proprio_normalizer.unnormalize(torch.zeros(config.proprio_dim, device=device))
    generator, losses, started = torch.Generator().manual_seed(seed), [], time.perf_counter()
    for step in tqdm(range(steps), desc="dual system", disable=not progress, mininterval=1.0):
        if config.first_call_weight == 1 and expert_waits is None:  # uniform, drawn as before the option existed
            rows = torch.randint(len(frame_index), (batch_size,), generator=generator)
        else:
            rows = torch.multinomial(weights, batch_size, replacement=True, generator=generator)
        seen = rows  # the windows System 2 saw; with stale_calls, some calls earlier
        if config.stale_calls:
            calls_back = torch.randint(config.stale_calls + 1, (batch_size,), generator=generator)
            seen = torch.maximum(rows - calls_back * config.action_steps, scene_starts[rows])
        windows = features[frame_index[seen]].to(device, torch.float32)  # (B, history, C, h, w)
        streams = policy.streams.filter(windows)
        if config.motion_dropout:
            still = torch.rand(batch_size, generator=generator) < config.motion_dropout
            streams["motion"][still.to(device)] = 0.0
        batch_proprio = proprio[proprio_index[rows]].to(device)
        if config.proprio_dropout:
            blind = torch.rand(batch_size, generator=generator) < config.proprio_dropout
            batch_proprio[blind.to(device)] = blind_proprio
        batch = {"streams": streams, "proprio": batch_proprio, "actions": actions[act_index[rows]].to(device)}
        loss = policy.compute_loss(batch, generator)
        training_step(model, averaged, optimizer, loss, step, ema_decay)
        lr_decay.step()
        losses.append(loss.item())
    tail = max(1, steps // 10)
    ema.metadata = {"config": asdict(config), "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
                    "ema_decay": ema_decay, "device": str(device), "episodes": len(demos.episode_ends),
                    "warm_start": None if init is None else init.metadata,
                    "windows": len(frame_index), "video_model": video_model.metadata,
                    "feature_seconds": feature_seconds,
                    "final_loss": sum(losses[-tail:]) / tail, "loss_curve": loss_curve(losses),
                    "seconds": time.perf_counter() - started}
    return ema.eval()


def _warm_start_config(config: DualSystemConfig, overrides: dict, proprio_dim: int, action_dim: int,
                       image_size: int) -> DualSystemConfig:
    """``config`` of the policy to warm-start from with ``overrides``; ValueError unless the demonstrations' shapes
    are its own."""
    shapes = {"proprio_dim": proprio_dim, "action_dim": action_dim, "image_size": image_size}
    differ = {key: value for key, value in shapes.items() if getattr(config, key) != value}
    if differ:
        raise ValueError(f"the demos must match init's shapes {({key: getattr(config, key) for key in shapes})}, "
                         f"got {differ}")
    return replace(config, **overrides)


def save_dual_system(policy: DualSystemPolicy, path: str | Path) -> Path:
    """Write both configs, all weights and metadata to ``path`` atomically.

    The weights are the video model's, projectors', DiT's and normalisers', on the CPU.
    """
    config = {"policy": asdict(policy.config), "video_model": asdict(policy.video_model.config)}
    return save_checkpoint(policy, config, policy.metadata, path)


def load_dual_system(path: str | Path, device: str | torch.device = "auto") -> DualSystemPolicy:
    """The ``DualSystemPolicy`` saved at ``path`` (or a ``zoo:NAME`` spec), in eval mode with gradients off; metadata in
    ``.metadata``."""
    return load_checkpoint(zoo_path(path), lambda config: DualSystemPolicy(
        DualSystemConfig(**config["policy"]), VideoDiffusion(VideoModelConfig(**config["video_model"]))),
        "dual system", device)
