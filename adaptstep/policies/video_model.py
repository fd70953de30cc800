"""System 2's backbone: a small video diffusion model over demonstration frames, used as a frozen feature extractor.

**What it learns.** Given the clean context frames i − k + 1 … i (k = ``context``), the model denoises the future
frame i + ``horizon`` (continuous-time DDPM ε-loss, Ho et al. 2020 / Kingma et al. 2021):
E |ε̂(α_t x0 + σ_t ε, t, context) − ε|² with x0 the future frame in [-1, 1], t ~ U[t_min, t_max] on adaptstep's
cosine VP schedule (Nichol & Dhariwal 2021). Windows are cut and padded at episode bounds by
``adaptstep.policies.windows.window_indices``. The network is a conv U-Net: the noisy future frame and the context
frames are stacked along channels; each resolution has one residual block (GroupNorm, SiLU, 3×3 convs, scale/shift
FiLM from sinusoidal features of the half log-SNR λ_t, as ``adaptstep.diffusion.networks``), with stride-2
downsampling, two middle blocks and skip connections on the way up.

**How Video2Act uses its video model, and how this follows it** (Video2Act, Jia et al. 2025, arXiv 2512.03044,
code ``jiayueru/Video2Act``): the video model is frozen and is never asked to generate; one forward pass on *clean*
input at the smallest diffusion time (Video2Act: timestep 0) gives intermediate hidden states, taken part-way through
the network (Video2Act runs only the first 20 of WAN's 30 blocks). ``frame_features`` does the same: for every frame
s of a sequence it puts frame s, clean and scaled by α_{t_min}, in the slot of the denoised frame, frames s − k + 1 … s
as context (the first frame repeated before the sequence starts), t = t_min, and returns the decoder's first feature
map (after the middle blocks and the lowest-resolution skip, ``feature_channels`` × ``feature_size``²); the
higher-resolution decoder and the output layer do not run.

**Where it departs.** Video2Act uses the pre-trained Wan2.2-TI2V-5B video DiT (hidden size 3072) on VAE latents;
here a conv U-Net of 3.2 M parameters (default sizes; 128 feature channels at 16×16) is trained from scratch on the
demonstrations' own frames in pixel space, so its features are only as rich as training on a few thousand frames
makes them. Its width sets what a frozen System 2 call (``VideoStreams`` on 8 frames) costs against a 5-step call
of the DiT action head: on one CPU thread about 10× at 64×64 with the default sizes, 8.7× for the benchmark's
32×32 model (width 64, channel_mults (1, 2)).
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from adaptstep.nn.checkpoints import load_checkpoint, save_checkpoint
from adaptstep.nn.device import resolve_device
from adaptstep.nn.schedules import SCHEDULES, make_noise_schedule
from adaptstep.nn.training import check_training_settings, loss_curve, training_step
from adaptstep.policies.windows import window_indices

LAMBDA_FREQUENCY_RANGE = (1 / 8, 8.0)  # angular frequencies of the λ features, as adaptstep.diffusion.networks


@dataclass(frozen=True)
class VideoModelConfig:
    """Everything needed to rebuild a ``VideoDiffusion``.

    The features have ``width · channel_mults[-1]`` channels at 2^(len(channel_mults) − 1) times smaller resolution.

    Args:
        image_size: The frames' side, in pixels; divisible by 2^(len(channel_mults) − 1).
        context: k, the clean context frames.
        horizon: How many steps ahead the denoised future frame lies.
        width: The U-Net's base width.
        channel_mults: The width multipliers of the U-Net's resolutions.
        frequencies: The sinusoidal features of λ_t.
        schedule: The noise schedule's name, a key of ``SCHEDULES``.

    Raises:
        ValueError: If a field is out of range.
    """

    image_size: int = 64
    context: int = 2
    horizon: int = 4
    width: int = 64
    channel_mults: tuple[int, ...] = (1, 2, 2)
    frequencies: int = 16
    schedule: str = "cosine"

    def __post_init__(self) -> None:
        for name in ("image_size", "context", "horizon", "width", "frequencies"):
            value = getattr(self, name)
            if isinstance(value, bool) or not (isinstance(value, int) and value > 0):
                raise ValueError(f"{name} must be an int > 0, got {value!r}")
        mults = tuple(self.channel_mults)
        if not mults or not all(isinstance(m, int) and not isinstance(m, bool) and m > 0 for m in mults):
            raise ValueError(f"channel_mults must be a non-empty tuple of ints > 0, got {self.channel_mults!r}")
        object.__setattr__(self, "channel_mults", mults)  # a list from a checkpoint becomes a tuple again
        if self.image_size % 2 ** (len(mults) - 1):
            raise ValueError(f"image_size must be divisible by {2 ** (len(mults) - 1)} for channel_mults {mults}, "
                             f"got {self.image_size}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {sorted(SCHEDULES)}, got {self.schedule!r}")

    @property
    def feature_channels(self) -> int:
        """C of the feature maps."""
        return self.width * self.channel_mults[-1]

    @property
    def feature_size(self) -> int:
        """h = w of the feature maps."""
        return self.image_size // 2 ** (len(self.channel_mults) - 1)


def frames_to_model(frames: np.ndarray | torch.Tensor, image_size: int, device: torch.device,
                    name: str = "frames") -> torch.Tensor:
    """uint8 (..., H, W, 3) frames as float32 (..., 3, H, W) in [-1, 1] on ``device``.

    Raises:
        ValueError: Naming ``name``, unless H = W = ``image_size`` and the dtype is uint8.
    """
    frames = torch.as_tensor(frames)
    if frames.ndim < 3 or tuple(frames.shape[-3:]) != (image_size, image_size, 3):
        raise ValueError(f"{name} must have shape (..., {image_size}, {image_size}, 3) (H, W, RGB), "
                         f"got {tuple(frames.shape)}")
    if frames.dtype != torch.uint8:
        raise ValueError(f"{name} must be uint8 in [0, 255], got dtype {frames.dtype}")
    return frames.to(device).movedim(-1, -3).to(torch.float32) / 127.5 - 1


def _groups(channels: int) -> int:
    return math.gcd(8, channels)


class ResidualBlock(nn.Module):
    """x ↦ skip(x) + conv(SiLU(GN(h·(1 + scale) + shift))) with h = conv(SiLU(GN x)), (scale, shift) = Linear(e).

    The second conv starts at zero, so the block starts as skip(x).

    Args:
        channels_in: The input channels.
        channels_out: The output channels.
        embed_dim: The embedding e's width.
    """

    def __init__(self, channels_in: int, channels_out: int, embed_dim: int) -> None:
        super().__init__()
        self.first = nn.Sequential(nn.GroupNorm(_groups(channels_in), channels_in), nn.SiLU(),
                                   nn.Conv2d(channels_in, channels_out, 3, padding=1))
        self.film = nn.Sequential(nn.SiLU(), nn.Linear(embed_dim, 2 * channels_out))
        self.second = nn.Sequential(nn.GroupNorm(_groups(channels_out), channels_out), nn.SiLU(),
                                    nn.Conv2d(channels_out, channels_out, 3, padding=1))
        nn.init.zeros_(self.second[-1].weight)
        nn.init.zeros_(self.second[-1].bias)
        self.skip = nn.Conv2d(channels_in, channels_out, 1) if channels_in != channels_out else nn.Identity()

    def forward(self, x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
        """The block on x (B, channels_in, H, W) with embedding e (B, embed_dim)."""
        scale, shift = self.film(embedding)[:, :, None, None].chunk(2, dim=1)
        return self.skip(x) + self.second(self.first(x) * (1 + scale) + shift)


class FrameUnet(nn.Module):
    """ε̂(x_t, λ_t, context) for frames (B, 3, H, W) and context (B, k, 3, H, W).

    ``features`` stops at the decoder's lowest-resolution block.

    Args:
        config: The architecture.
    """

    def __init__(self, config: VideoModelConfig) -> None:
        super().__init__()
        width, mults = config.width, config.channel_mults
        embed_dim = 4 * width
        self.register_buffer("frequencies", torch.exp(torch.linspace(*map(math.log, LAMBDA_FREQUENCY_RANGE),
                                                                     config.frequencies)))
        self.embed = nn.Sequential(nn.Linear(2 * config.frequencies, embed_dim), nn.SiLU(),
                                   nn.Linear(embed_dim, embed_dim))
        self.input = nn.Conv2d(3 * (config.context + 1), width, 3, padding=1)
        channels = [width * m for m in mults]
        self.down = nn.ModuleList([ResidualBlock(w_in, w_out, embed_dim)
                                   for w_in, w_out in zip([width, *channels[:-1]], channels)])
        self.downsample = nn.ModuleList([nn.Conv2d(c, c, 3, stride=2, padding=1) for c in channels[:-1]])
        self.middle = nn.ModuleList([ResidualBlock(channels[-1], channels[-1], embed_dim) for _ in range(2)])
        self.up = nn.ModuleList([ResidualBlock(2 * c, c, embed_dim) for c in channels[::-1]])
        self.upsample = nn.ModuleList([nn.Sequential(nn.Upsample(scale_factor=2.0, mode="nearest"),
                                                     nn.Conv2d(w_in, w_out, 3, padding=1))
                                       for w_in, w_out in zip(channels[:0:-1], channels[-2::-1])])
        self.output = nn.Sequential(nn.GroupNorm(_groups(width), width), nn.SiLU(), nn.Conv2d(width, 3, 3, padding=1))
        nn.init.zeros_(self.output[-1].weight)
        nn.init.zeros_(self.output[-1].bias)

    def _encode(self, x: torch.Tensor, log_snr: torch.Tensor,
                context: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """(first decoder block's output, embedding, remaining skips)."""
        angles = log_snr.reshape(-1, 1).to(self.frequencies.dtype) * self.frequencies
        embedding = self.embed(torch.cat([torch.sin(angles), torch.cos(angles)], dim=1))
        h, skips = self.input(torch.cat([x, context.flatten(1, 2)], dim=1)), []
        for index, block in enumerate(self.down):
            h = block(h, embedding)
            skips.append(h)
            if index < len(self.downsample):
                h = self.downsample[index](h)
        for block in self.middle:
            h = block(h, embedding)
        return self.up[0](torch.cat([h, skips.pop()], dim=1), embedding), embedding, skips

    def features(self, x: torch.Tensor, log_snr: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """The decoder's first feature map (B, C, h, w), after the middle blocks and the lowest-resolution skip."""
        return self._encode(x, log_snr, context)[0]

    def forward(self, x: torch.Tensor, log_snr: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """ε̂ (B, 3, H, W) of frames x at half log-SNRs ``log_snr`` (B,) given ``context`` (B, k, 3, H, W)."""
        h, embedding, skips = self._encode(x, log_snr, context)
        for upsample, block in zip(self.upsample, self.up[1:]):
            h = block(torch.cat([upsample(h), skips.pop()], dim=1), embedding)
        return self.output(h)


class VideoDiffusion(nn.Module):
    """The future-frame diffusion model; ``forward`` predicts ε, ``frame_features`` is the frozen System 2 pass.

    Args:
        config: The architecture.
    """

    def __init__(self, config: VideoModelConfig) -> None:
        super().__init__()
        self.config, self.metadata = config, {}
        self.schedule = make_noise_schedule(config.schedule)
        self.network = FrameUnet(config)

    @property
    def feature_shape(self) -> tuple[int, int, int]:
        """(C, h, w) of one frame's feature map."""
        return self.config.feature_channels, self.config.feature_size, self.config.feature_size

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        """ε̂ for noisy future frames x_t (B, 3, H, W) at times t (B,) given clean context (B, k, 3, H, W).

        All frames are float, in [-1, 1] units.
        """
        t = torch.as_tensor(t, dtype=torch.float64, device=x_t.device).expand(len(x_t))
        return self.network(x_t, self.schedule.lambda_(t), context)

    def compute_loss(self, context: torch.Tensor, future: torch.Tensor,
                     generator: torch.Generator | None = None) -> torch.Tensor:
        """Mean squared ε error for uint8 context frames (B, k, H, W, 3) and future frames (B, H, W, 3).

        Args:
            context: The clean context frames.
            future: The future frames to denoise.
            generator: Draws the times and noise on the CPU.
        """
        device, size = self.network.frequencies.device, self.config.image_size
        context, x0 = frames_to_model(context, size, device, "context"), frames_to_model(future, size, device, "future")
        uniform = torch.rand(len(x0), generator=generator, dtype=torch.float64)
        t = (self.schedule.t_min + (self.schedule.t_max - self.schedule.t_min) * uniform).to(device)
        noise = torch.randn(x0.shape, generator=generator).to(device)
        alpha = self.schedule.alpha(t).to(x0.dtype)[:, None, None, None]
        sigma = self.schedule.sigma(t).to(x0.dtype)[:, None, None, None]
        return torch.mean((self(alpha * x0 + sigma * noise, t, context) - noise) ** 2)

    @torch.no_grad()
    def frame_features(self, frames: np.ndarray | torch.Tensor, skip: int = 0) -> torch.Tensor:
        """Feature maps (B, T − skip, C, h, w) of frames ``skip`` … T − 1 of uint8 frames (B, T, H, W, 3).

        One forward pass per frame on clean input at t_min, frame s in the denoised slot and frames s − k + 1 … s
        (clamped at 0) as context. With ``skip`` = k − 1 the first frames serve only as context and no context is
        clamped.
        """
        device, k = self.network.frequencies.device, self.config.context
        x = frames_to_model(frames, self.config.image_size, device)
        if x.ndim != 5:
            raise ValueError(f"frames must have shape (B, T, H, W, 3), got {tuple(torch.as_tensor(frames).shape)}")
        batch, length = x.shape[:2]
        if isinstance(skip, bool) or not (isinstance(skip, int) and 0 <= skip < length):
            raise ValueError(f"skip must be an int in [0, T = {length}), got {skip!r}")
        steps = torch.arange(skip, length, device=device)
        context = x[:, (steps[:, None] + torch.arange(1 - k, 1, device=device)).clamp_min(0)]  # (B, T', k, 3, H, W)
        t = torch.full((batch * len(steps),), self.schedule.t_min, dtype=torch.float64, device=device)
        alpha = self.schedule.alpha(t[:1]).to(x.dtype)
        features = self.network.features(alpha * x[:, skip:].flatten(0, 1), self.schedule.lambda_(t),
                                         context.flatten(0, 1))
        return features.reshape(batch, len(steps), *features.shape[1:])

    @torch.no_grad()
    def episode_features(self, images: np.ndarray | torch.Tensor, episode_ends: np.ndarray,
                         progress: bool = False) -> torch.Tensor:
        """Feature maps (N, C, h, w) as float16 on the CPU of every frame, each with the context of its own episode.

        The context is clamped at the episode's first frame: a window's features
        (``frame_features(window, skip=k − 1)``) are these rows whenever the window's frames are consecutive in one
        episode or repeat the episode's first frame, as Diffusion Policy's padding does. Filled in place, so the peak
        memory is the table's own (e.g. 15.7 GB for 240,000 frames of 128×16×16).

        Args:
            images: uint8 frames, shape (N, H, W, 3).
            episode_ends: The episodes' exclusive ends.
            progress: Show a progress bar.
        """
        images, features, start = torch.as_tensor(images), None, 0
        for end in tqdm(np.asarray(episode_ends).tolist(), desc="system 2 features", disable=not progress,
                        mininterval=1.0):
            part = self.frame_features(images[None, start:end])[0]
            if features is None:
                features = torch.empty((len(images), *part.shape[1:]), dtype=torch.float16)
            features[start:end] = part
            start = end
        return features


def _check_demos(demos) -> None:
    images, ends = np.asarray(demos.images), np.asarray(demos.episode_ends)
    if images.ndim != 4 or images.shape[-1] != 3 or images.shape[1] != images.shape[2] or images.dtype != np.uint8:
        raise ValueError(f"demos.images must be uint8 of shape (N, S, S, 3), got {images.dtype} {images.shape}")
    if ends.ndim != 1 or len(ends) == 0 or ends[-1] != len(images):
        raise ValueError(f"demos.episode_ends must be 1-D and end at len(demos.images) = {len(images)}, got {ends}")


def train_video_model(demos, steps: int = 2000, batch_size: int = 32, lr: float = 3e-4, seed: int = 0,
                      device: str | torch.device = "auto", progress: bool = False, ema_decay: float = 0.999,
                      **config) -> VideoDiffusion:
    """Train a ``VideoDiffusion`` on the frames of ``demos``.

    Args:
        demos (Demonstrations): Anything with ``images`` uint8 (N, S, S, 3) and ``episode_ends`` (E,) exclusive ends.
        steps: The optimiser steps.
        batch_size: The windows per batch.
        lr: The learning rate.
        seed: Seeds the training.
        device: The torch device, ``"auto"`` for CUDA when present.
        progress: Show a progress bar.
        ema_decay: The decay of the weights' exponential moving average.
        **config (Any): ``VideoModelConfig`` fields other than ``image_size`` (taken from the images).

    Returns:
        The EMA model in eval mode with gradients off and ``metadata`` (config, settings, frames,
        final_loss = mean of the last 10% of steps, loss_curve, seconds).
    """
    check_training_settings(steps, batch_size, lr, ema_decay)
    _check_demos(demos)
    device = resolve_device(device)
    config = VideoModelConfig(image_size=int(demos.images.shape[1]), **config)
    context_idx, future_idx = window_indices(demos.episode_ends, 1, config.horizon + 1, history=config.context)
    context_idx, future_idx = torch.as_tensor(context_idx), torch.as_tensor(future_idx[:, -1])
    images = torch.as_tensor(np.asarray(demos.images)).to(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = VideoDiffusion(config).to(device)
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    generator, losses, started = torch.Generator().manual_seed(seed), [], time.perf_counter()
    for step in tqdm(range(steps), desc="video model", disable=not progress, mininterval=1.0):
        rows = torch.randint(len(future_idx), (batch_size,), generator=generator)
        loss = model.compute_loss(images[context_idx[rows].to(device)], images[future_idx[rows].to(device)],
                                  generator)
        training_step(model, ema, optimizer, loss, step, ema_decay)
        losses.append(loss.item())
    tail = max(1, steps // 10)
    ema.metadata = {"config": asdict(config), "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed,
                    "ema_decay": ema_decay, "frames": len(images), "episodes": len(demos.episode_ends),
                    "device": str(device), "final_loss": sum(losses[-tail:]) / tail, "loss_curve": loss_curve(losses),
                    "seconds": time.perf_counter() - started}
    return ema.eval()


def save_video_model(model: VideoDiffusion, path: str | Path) -> Path:
    """Write config, weights (on the CPU) and metadata to ``path`` atomically; returns ``path``."""
    return save_checkpoint(model, asdict(model.config), model.metadata, path)


def load_video_model(path: str | Path, device: str | torch.device = "auto") -> VideoDiffusion:
    """The ``VideoDiffusion`` saved at ``path``, in eval mode with gradients off; metadata in ``model.metadata``."""
    return load_checkpoint(path, lambda config: VideoDiffusion(VideoModelConfig(**config)), "video model", device)
