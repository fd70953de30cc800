"""Diffusion Policy (Chi et al. 2023), the CNN variant with images (or state alone), sized for a CPU.

The observation of the last ``obs_horizon`` steps (images and proprioception) becomes the global condition
c = [ImageEncoder(image_i), normalised proprio_i for each of the T_o steps], or c = [normalised proprio_i] for the
state-based variant (``images=False``: on PushT proprio holds the agent's position and the T's keypoints); a ``ConditionalUnet1D`` with FiLM on
[timestep embedding, c] predicts the noise ε of a normalised action chunk of ``pred_horizon`` steps. Training is
the DDPM ε-loss of ``chunk_diffusion_loss`` (cosine noise schedule) on Diffusion Policy's demo windows
(``window_indices``), with Adam and a cosine learning-rate decay to zero; acting samples a chunk with DDIM (10
steps by default) through ``sample_chunks`` and the caller executes ``action_steps`` actions from position T_o − 1
on. Actions and proprioception are min-max normalised to [-1, 1] with ranges fitted on the demonstrations.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from adaptstep.nn.checkpoints import load_checkpoint, save_checkpoint
from adaptstep.nn.device import resolve_device
from adaptstep.nn.training import check_training_settings, loss_curve, training_step
from adaptstep.policies.action_diffusion import MinMaxNormalizer, chunk_diffusion_loss, chunk_schedule, sample_chunks
from adaptstep.policies.unet1d import ConditionalUnet1D
from adaptstep.policies.vision import ImageEncoder, images_to_tensor
from adaptstep.policies.windows import demo_tensors, training_windows
from adaptstep.zoo import zoo_path


@dataclass(frozen=True)
class DiffusionPolicyConfig:
    """Everything needed to rebuild a ``DiffusionPolicy``.

    Args:
        proprio_dim: The proprioception's dimension P.
        action_dim: The action's dimension A.
        obs_horizon: T_o, the observed steps.
        pred_horizon: T_p, a chunk's steps; divisible by 2**(len(down_dims) − 1).
        action_steps: The actions executed per predict call, from chunk position T_o − 1 on
            (<= T_p − T_o + 1).
        image_size: The camera image's side S, in pixels.
        encoder_channels: The image encoder's convolution channels.
        encoder_downsample: The stride-2 convolutions: 2 makes 64×64 images 16×16 keypoint maps.
        keypoints: The spatial-softmax keypoints.
        image_features: The image encoder's output features.
        shift: The random-shift augmentation in training, in pixels.
        down_dims: The U-Net's channels per resolution.
        step_embed_dim: The diffusion time embedding's width.
        kernel_size: The U-Net's convolution kernel.
        images: Condition on images; False for the state-based variant, which reads proprio alone.

    Raises:
        ValueError: If a size is not an int >= 1, ``pred_horizon`` is not divisible, or ``action_steps`` is too
            large.
    """

    proprio_dim: int
    action_dim: int
    obs_horizon: int = 2
    pred_horizon: int = 16
    action_steps: int = 4
    image_size: int = 64
    encoder_channels: tuple[int, ...] = (16, 32, 32, 32)
    encoder_downsample: int = 2
    keypoints: int = 32
    image_features: int = 64
    shift: int = 4
    down_dims: tuple[int, ...] = (64, 128, 256)
    step_embed_dim: int = 64
    kernel_size: int = 5
    images: bool = True

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, list):
                object.__setattr__(self, field.name, tuple(value))  # lists come back from a checkpoint's config
        for name in ("proprio_dim", "action_dim", "obs_horizon", "pred_horizon", "action_steps", "image_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, int) and value >= 1):
                raise ValueError(f"{name} must be an int >= 1, got {value!r}")
        if not isinstance(self.images, bool):
            raise ValueError(f"images must be True or False, got {self.images!r}")
        if self.pred_horizon % 2 ** (len(self.down_dims) - 1):
            raise ValueError(f"pred_horizon must be divisible by 2**(len(down_dims) - 1) = "
                             f"{2 ** (len(self.down_dims) - 1)}, got {self.pred_horizon}")
        if self.action_steps > self.pred_horizon - self.obs_horizon + 1:
            raise ValueError(f"action_steps must be <= pred_horizon - obs_horizon + 1 = "
                             f"{self.pred_horizon - self.obs_horizon + 1}, got {self.action_steps}")

    @property
    def chunk_shape(self) -> tuple[int, int]:
        """A chunk's (pred_horizon, action_dim)."""
        return self.pred_horizon, self.action_dim


class DiffusionPolicy(nn.Module):
    """The image encoder, the noise network and the action / proprio normalisers.

    As a chunk network (``action_diffusion``) it is called as ``policy(x_t, t, {"global": c})``.

    Args:
        config: The architecture.
        action_normalizer: The actions' normaliser; None for a placeholder a checkpoint's weights overwrite.
        proprio_normalizer: The proprioception's normaliser; None likewise.
    """

    def __init__(self, config: DiffusionPolicyConfig, action_normalizer: MinMaxNormalizer | None = None,
                 proprio_normalizer: MinMaxNormalizer | None = None) -> None:
        super().__init__()
        self.config, self.metadata, self.schedule = config, {}, chunk_schedule()
        self.encoder = ImageEncoder(config.image_size, config.encoder_channels, config.encoder_downsample,
                                    config.keypoints, config.image_features, config.shift) if config.images else None
        cond_dim = config.obs_horizon * (config.image_features * config.images + config.proprio_dim)
        self.unet = ConditionalUnet1D(config.action_dim, cond_dim, config.down_dims, config.step_embed_dim,
                                      config.kernel_size)
        self.action_normalizer = action_normalizer or MinMaxNormalizer.placeholder(config.action_dim)
        self.proprio_normalizer = proprio_normalizer or MinMaxNormalizer.placeholder(config.proprio_dim)

    @property
    def device(self) -> torch.device:
        """The device of the policy's weights."""
        return self.action_normalizer.low.device

    def forward(self, x: torch.Tensor, t: torch.Tensor, condition: dict[str, torch.Tensor]) -> torch.Tensor:
        """ε̂ for noisy chunks x (B, T_p, A) at times t (B,) under the global condition ``condition["global"]``."""
        return self.unet(x, t, condition["global"])

    def encode(self, images: np.ndarray | torch.Tensor, proprio: np.ndarray | torch.Tensor,
               generator: torch.Generator | None = None) -> torch.Tensor:
        """Global condition (B, T_o·(image_features + proprio_dim)) from observations.

        Args:
            images: uint8 images, shape (B, T_o, S, S, 3); ignored by the state-based variant.
            proprio: Raw proprioception, shape (B, T_o, P).
            generator: Drives the training-time image shifts.

        Raises:
            ValueError: If a shape does not fit the config.
        """
        config = self.config
        proprio = torch.as_tensor(proprio, dtype=torch.float32, device=self.device)
        if not config.images:
            if proprio.ndim != 3 or tuple(proprio.shape[1:]) != (config.obs_horizon, config.proprio_dim):
                raise ValueError(f"proprio must have shape (B, obs_horizon, proprio_dim) = (B, {config.obs_horizon}, "
                                 f"{config.proprio_dim}), got {tuple(proprio.shape)}")
            return self.proprio_normalizer.normalize(proprio).flatten(1)
        pixels = images_to_tensor(images, config.image_size, self.device)
        batch = (len(pixels), config.obs_horizon)
        if pixels.ndim != 5 or pixels.shape[1] != config.obs_horizon:
            raise ValueError(f"images must have shape (B, obs_horizon = {config.obs_horizon}, {config.image_size}, "
                             f"{config.image_size}, 3), got {tuple(torch.as_tensor(images).shape)}")
        if tuple(proprio.shape) != (*batch, config.proprio_dim):
            raise ValueError(f"proprio must have shape (B, obs_horizon, proprio_dim) = "
                             f"{(*batch, config.proprio_dim)} to match images, got {tuple(proprio.shape)}")
        features = self.encoder(pixels.flatten(0, 1), generator).reshape(*batch, -1)
        return torch.cat([features, self.proprio_normalizer.normalize(proprio)], dim=-1).flatten(1)

    def compute_loss(self, batch: dict[str, np.ndarray | torch.Tensor],
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """ε-loss on a training batch.

        Args:
            batch: {"images": uint8 (B, T_o, S, S, 3), "proprio": (B, T_o, P), "actions": (B, T_p, A) in data
                units}.
            generator: Drives the image shifts, times and noise.

        Raises:
            ValueError: If a shape does not fit the config.
        """
        actions = torch.as_tensor(batch["actions"], dtype=torch.float32, device=self.device)
        if tuple(actions.shape[1:]) != self.config.chunk_shape:
            raise ValueError(f"actions must have shape (B, pred_horizon, action_dim) = (B, {self.config.pred_horizon}, "
                             f"{self.config.action_dim}), got {tuple(actions.shape)}")
        condition = {"global": self.encode(batch["images"], batch["proprio"], generator)}
        return chunk_diffusion_loss(self, self.action_normalizer.normalize(actions), condition, self.schedule,
                                    generator)

    @torch.no_grad()
    def predict(self, images: np.ndarray | torch.Tensor, proprio: np.ndarray | torch.Tensor, steps: int = 10,
                solver: str = "ddim", seed: int | None = None) -> tuple[np.ndarray, int]:
        """Sample action chunks for observations, in eval mode (no image shifts).

        Args:
            images: uint8 images, shape (B, T_o, S, S, 3).
            proprio: Raw proprioception, shape (B, T_o, P).
            steps: The solver steps.
            solver: The data-prediction solver (``"ddim"``, …).
            seed: Seeds the initial noise; None for torch's global generator.

        Returns:
            (chunks (B, pred_horizon, action_dim) float32 in data units, NFE); the caller executes
            ``chunks[:, T_o − 1:][:, :action_steps]``.
        """
        training = self.training
        self.eval()
        try:
            condition = {"global": self.encode(images, proprio)}
            chunks, nfe = sample_chunks(self, condition, len(condition["global"]), self.config.chunk_shape,
                                        self.schedule, steps, solver, seed)
        finally:
            self.train(training)
        return self.action_normalizer.unnormalize(chunks).cpu().numpy(), nfe


def train_diffusion_policy(demos, steps: int = 5000, batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
                           device: str | torch.device = "auto", progress: bool = False, ema_decay: float = 0.995,
                           **config) -> DiffusionPolicy:
    """Train a ``DiffusionPolicy`` on demonstrations.

    Windows where the demos' expert waits to react to a jump (``expert_waits``) are not drawn.

    Args:
        demos (Demonstrations): Images (N, S, S, 3) uint8, proprio (N, P), actions (N, A), episode_ends (E,).
        steps: The optimiser steps.
        batch_size: The windows per batch.
        lr: Adam's learning rate, decayed to zero on a cosine.
        seed: Seeds initialisation, batches, image shifts, times and noise.
        device: The torch device, ``"auto"`` for CUDA when present.
        progress: Show a progress bar.
        ema_decay: The decay of the weights' exponential moving average.
        **config (Any): ``DiffusionPolicyConfig`` fields to override.

    Returns:
        The EMA policy in eval mode with ``metadata`` (settings, final_loss, loss_curve, seconds).

    Raises:
        ValueError: If a training setting or a config field is out of range.
    """
    check_training_settings(steps, batch_size, lr, ema_decay)
    device = resolve_device(device)
    images, proprio, actions = demo_tensors(demos)
    config = DiffusionPolicyConfig(proprio_dim=proprio.shape[1], action_dim=actions.shape[1],
                                   **{"image_size": images.shape[1], **config})
    obs_index, act_index = training_windows(demos, config.obs_horizon, config.pred_horizon)
    waits = getattr(demos, "expert_waits", None)
    drawn = torch.arange(len(obs_index)) if waits is None else torch.as_tensor(np.flatnonzero(~np.asarray(waits)))
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        policy = DiffusionPolicy(config, MinMaxNormalizer.fit(actions), MinMaxNormalizer.fit(proprio)).to(device)
    ema = copy.deepcopy(policy).requires_grad_(False)
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr, foreach=True)
    lr_decay = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)  # Chi et al.'s cosine decay, no warm-up
    images, proprio, actions = images.to(device), proprio.to(device), actions.to(device)
    generator, losses, started = torch.Generator().manual_seed(seed), [], time.perf_counter()
    policy.train()
    for step in tqdm(range(steps), desc="diffusion policy", disable=not progress, mininterval=1.0):
        rows = drawn[torch.randint(len(drawn), (batch_size,), generator=generator)]
        observed, acted = obs_index[rows].to(device), act_index[rows].to(device)
        batch = {"images": images[observed] if config.images else None, "proprio": proprio[observed],
                 "actions": actions[acted]}
        loss = policy.compute_loss(batch, generator)
        training_step(policy, ema, optimizer, loss, step, ema_decay)
        lr_decay.step()
        losses.append(loss.item())
    tail = max(1, steps // 10)
    ema.metadata = {"config": asdict(config), "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
                    "ema_decay": ema_decay, "device": str(device), "episodes": len(demos.episode_ends),
                    "windows": len(obs_index), "final_loss": sum(losses[-tail:]) / tail,
                    "loss_curve": loss_curve(losses), "seconds": time.perf_counter() - started}
    return ema.eval()


def save_diffusion_policy(policy: DiffusionPolicy, path: str | Path) -> Path:
    """Write config, weights (normalisers included, on the CPU) and metadata to ``path`` atomically."""
    return save_checkpoint(policy, asdict(policy.config), policy.metadata, path)


def load_diffusion_policy(path: str | Path, device: str | torch.device = "auto") -> DiffusionPolicy:
    """The ``DiffusionPolicy`` saved at ``path`` (or a ``zoo:NAME`` spec), in eval mode with gradients off; metadata in
    ``.metadata``."""
    return load_checkpoint(zoo_path(path), lambda config: DiffusionPolicy(DiffusionPolicyConfig(**config)),
                           "diffusion policy", device)
