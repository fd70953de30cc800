"""System 2's two feature streams, after Video2Act (Jia et al. 2025, arXiv 2512.03044; code ``jiayueru/Video2Act``).

* **Spatial stream** ("foreground boundaries"): a per-channel (depthwise) 3×3 Sobel gradient magnitude
  sqrt(g_x² + g_y² + 1e-6) with g_x = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]] ⋆ f and g_y its transpose ⋆ f, applied to
  the newest frame's feature map.
* **Motion stream** ("inter-frame motion"): a temporal band-pass over the frame sequence: X = rfft_T(f) (one-sided
  DFT along time), bins with frequency k·fps/T outside [low_hz, high_hz] set to zero, f' = irfft_T(X). With
  low_hz > 0 the DC bin, i.e. whatever is static (the background), is removed exactly.

Video2Act freezes its video model (WAN 2.2) and runs it once on clean input; so does ``VideoStreams``, which holds
no trainable parameters and computes everything under ``torch.no_grad``. Its default band (3, 22) Hz at 50 fps is
Video2Act's 1–7 Hz at 16 fps scaled to the frame rate (DC and the Nyquist bin removed); with 8 frames it keeps the
bins 6.25, 12.5 and 18.75 Hz.

Departures: Video2Act filters the VAE latents (Sobel on a 480×832 frame's latent, FFT on 16 latent frames) and the
WAN output tokens of the filtered latents condition the policy; here the filters act on the video model's
intermediate feature maps (``VideoDiffusion.frame_features``), so the video model runs once per frame for both
streams. Sobel pads by replicating the border (Video2Act pads with zeros), so a flat feature map has no edge at its
border.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from adaptstep.policies.video_model import VideoDiffusion

SOBEL_EPS = 1e-6


def sobel_boundary(features: torch.Tensor) -> torch.Tensor:
    """sqrt(g_x² + g_y² + 1e-6) per channel of ``features`` (..., h, w), same shape (replicated border).

    The 3×3 kernels are separable, g_x = [1, 2, 1]ᵀ ⊗ [-1, 0, 1], so they are applied as shifted sums (a depthwise
    convolution over thousands of small maps is far slower on a CPU).
    """
    if features.ndim < 2 or min(features.shape[-2:]) < 1:
        raise ValueError(f"features must have shape (..., h, w), got {tuple(features.shape)}")
    height, width = features.shape[-2:]
    padded = F.pad(features.reshape(-1, height, width), (1, 1, 1, 1), mode="replicate")
    difference = padded[..., 2:] - padded[..., :-2]  # [-1, 0, 1] along the width, (N, h + 2, w)
    smoothed = padded[..., :-2] + 2 * padded[..., 1:-1] + padded[..., 2:]  # [1, 2, 1] along the width
    gx = difference[:, :-2] + 2 * difference[:, 1:-1] + difference[:, 2:]
    gy = smoothed[:, 2:] - smoothed[:, :-2]
    return torch.sqrt(gx**2 + gy**2 + SOBEL_EPS).reshape(features.shape)


def band_mask(length: int, fps: float, low_hz: float, high_hz: float, name: str = "low_hz, high_hz") -> torch.Tensor:
    """Bool mask over the rfft bins k·fps/length (k = 0 … length // 2) inside [low_hz, high_hz].

    Args:
        length: T, the frames.
        fps: The frame rate, in Hz.
        low_hz: The lowest frequency kept, in Hz.
        high_hz: The highest frequency kept, in Hz.
        name: The parameter's name, for the error.

    Raises:
        ValueError: Naming ``name``, unless 0 < low_hz <= high_hz <= fps/2 and at least one bin falls inside.
    """
    if isinstance(fps, bool) or not (isinstance(fps, (int, float)) and math.isfinite(fps) and fps > 0):
        raise ValueError(f"fps must be a finite number > 0, got {fps!r}")
    if not (0 < low_hz <= high_hz <= fps / 2):
        raise ValueError(f"{name} must satisfy 0 < low <= high <= fps/2 = {fps / 2:g}, got ({low_hz!r}, {high_hz!r})")
    frequencies = torch.fft.rfftfreq(length, d=1.0 / fps, dtype=torch.float64)
    mask = (frequencies >= low_hz) & (frequencies <= high_hz)
    if not mask.any():
        raise ValueError(f"{name} = ({low_hz:g}, {high_hz:g}) Hz holds none of the frequencies "
                         f"{[round(f, 3) for f in frequencies.tolist()]} Hz of {length} frames at fps = {fps:g}")
    return mask


def band_pass_matrix(length: int, fps: float, low_hz: float, high_hz: float) -> torch.Tensor:
    """The (T, T) float64 matrix M of the band-pass, f' = M f along time: column s is irfft(mask · rfft(e_s)).

    The arguments are ``band_mask``'s.
    """
    mask = band_mask(length, fps, low_hz, high_hz).to(torch.float64)
    spectrum = torch.fft.rfft(torch.eye(length, dtype=torch.float64), dim=0) * mask[:, None]
    return torch.fft.irfft(spectrum, n=length, dim=0)


def temporal_band_pass(features: torch.Tensor, fps: float, low_hz: float, high_hz: float) -> torch.Tensor:
    """irfft(rfft(features, dim=1) · 1[low_hz <= f <= high_hz], n=T) for ``features`` (B, T, ...).

    It is applied as the linear map ``band_pass_matrix`` (one small matrix product instead of millions of length-T
    transforms); ``fps`` and the band are in Hz.
    """
    if features.ndim < 2 or features.shape[1] < 2:
        raise ValueError(f"features must have shape (B, T, ...) with T >= 2, got {tuple(features.shape)}")
    return apply_along_time(band_pass_matrix(features.shape[1], fps, low_hz, high_hz), features)


def apply_along_time(matrix: torch.Tensor, features: torch.Tensor) -> torch.Tensor:
    """f' = M f along dim 1 of ``features`` (B, T, ...) for a (T, T) ``matrix``."""
    return (matrix.to(features) @ features.flatten(2)).reshape(features.shape)


class VideoStreams(nn.Module):
    """The frozen System 2: the two feature streams of a window of frames.

    ``streams(frames)`` with uint8 frames (B, window, H, W, 3), oldest first, returns
    ``{"spatial": (B, C, h, w), "motion": (B, history, C, h, w)}``: the Sobel boundary map of the newest frame's
    features and the band-passed features of the newest ``history`` frames (shapes in ``output_shapes``).

    Frame s's features depend on frames s − k + 1 … s (k = the video model's ``context``), so a call takes
    ``window`` = history + k − 1 frames, the first k − 1 only as context. Each frame's features are then those of
    ``VideoDiffusion.episode_features`` over its whole episode, which training filters window by window
    (``filter``).

    Args:
        video_model: The video model; frozen in place (eval mode, gradients off).
        history: The frames of the motion stream (>= 2).
        fps: The frame rate, in Hz.
        band: (low_hz, high_hz) of the motion stream's band-pass, in Hz.

    Raises:
        ValueError: If ``history`` is not an int >= 2 or ``band`` keeps no bin (see ``band_mask``).
    """

    def __init__(self, video_model: VideoDiffusion, history: int = 8, fps: float = 50.0,
                 band: tuple[float, float] = (3.0, 22.0)) -> None:
        super().__init__()
        if isinstance(history, bool) or not (isinstance(history, (int, np.integer)) and history >= 2):
            raise ValueError(f"history must be an int >= 2, got {history!r}")
        if not (isinstance(band, (tuple, list)) and len(band) == 2):
            raise ValueError(f"band must be a pair (low_hz, high_hz), got {band!r}")
        band_mask(int(history), fps, band[0], band[1], name="band")
        self.video_model = video_model.eval().requires_grad_(False)
        self.history, self.fps, self.band = int(history), float(fps), (float(band[0]), float(band[1]))
        # built once, not at every call; not saved, so checkpoints hold only the video model
        self.register_buffer("band_pass", band_pass_matrix(self.history, self.fps, *self.band), persistent=False)

    @property
    def output_shapes(self) -> dict[str, tuple[int, ...]]:
        """Per-sample shapes of the two streams."""
        shape = self.video_model.feature_shape
        return {"spatial": shape, "motion": (self.history, *shape)}

    @property
    def window(self) -> int:
        """Frames per call: ``history`` plus the video model's k − 1 context frames before them."""
        return self.history + self.video_model.config.context - 1

    @torch.no_grad()
    def forward(self, frames: np.ndarray | torch.Tensor) -> dict[str, torch.Tensor]:
        """The two streams of uint8 frames (B, window, S, S, 3), oldest first.

        Raises:
            ValueError: If ``frames`` has the wrong shape.
        """
        size = self.video_model.config.image_size
        shape = tuple(frames.shape)
        if len(shape) != 5 or shape[1] != self.window or shape[2:] != (size, size, 3):
            raise ValueError(f"frames must have shape (B, window = history + context - 1 = {self.window}, {size}, "
                             f"{size}, 3), got {shape}")
        return self.filter(self.video_model.frame_features(frames, skip=self.window - self.history))

    @torch.no_grad()
    def filter(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """The two streams of frame features (B, history, C, h, w).

        The features are e.g. rows of ``video_model.episode_features`` gathered window by window.
        """
        expected = (self.history, *self.video_model.feature_shape)
        if features.ndim != 5 or tuple(features.shape[1:]) != expected:
            raise ValueError(f"features must have shape (B, {', '.join(map(str, expected))}), "
                             f"got {tuple(features.shape)}")
        return {"spatial": sobel_boundary(features[:, -1]), "motion": apply_along_time(self.band_pass, features)}
