"""Diffusion Policy's image encoder, shrunk for a CPU.

A small CNN trained from scratch with GroupNorm (not BatchNorm, which Chi et al. 2023 found to clash with the
weights' EMA) and spatial-softmax keypoint pooling.

Spatial softmax (Levine et al. 2016; robomimic / LeRobot ``SpatialSoftmax``): a 1×1 convolution maps the feature
map to K keypoint maps f_k; each gives the expected image position (x_k, y_k) = Σ_ij softmax(f_k)_ij · (u_j, v_i)
with u, v the pixel coordinates scaled to [-1, 1]. A Linear layer maps the 2K coordinates to the feature vector (as
robomimic's ``VisualCore``, Diffusion Policy's encoder, does).
In training the images may be shifted at random by up to ``shift`` pixels (pad by edge replication, then crop back
to the same size), the random-shift form of Diffusion Policy's random-crop augmentation (Yarats et al. 2021).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


def images_to_tensor(images: np.ndarray | torch.Tensor, image_size: int, device: torch.device) -> torch.Tensor:
    """uint8 images (..., H, W, 3) as float32 (..., 3, H, W) in [-1, 1] on ``device``.

    Raises:
        ValueError: Unless they are uint8 with H = W = ``image_size``.
    """
    expected = (image_size, image_size, 3)
    images = torch.as_tensor(images)
    if images.dtype != torch.uint8:
        raise ValueError(f"images must be uint8 with shape (..., {expected[0]}, {expected[1]}, 3), got dtype "
                         f"{images.dtype}")
    if images.ndim < 3 or tuple(images.shape[-3:]) != expected:
        raise ValueError(f"images must end in shape (H, W, 3) = {expected}, got shape {tuple(images.shape)}")
    images = images.to(device).movedim(-1, -3).to(torch.float32)
    return images / 127.5 - 1


def random_shift(images: torch.Tensor, shift: int, generator: torch.Generator | None = None) -> torch.Tensor:
    """Each image of (N, C, H, W) moved by integer offsets in [-shift, shift] along both axes, the border repeated.

    Args:
        images: The images.
        shift: The largest offset, in pixels.
        generator: Draws the offsets on the CPU.
    """
    if shift == 0:
        return images
    n, _, height, width = images.shape
    padded = nn.functional.pad(images, (shift,) * 4, mode="replicate")
    offsets = torch.randint(0, 2 * shift + 1, (2, n), generator=generator).to(images.device)
    rows = (offsets[0][:, None] + torch.arange(height, device=images.device))[:, None, :, None]
    columns = (offsets[1][:, None] + torch.arange(width, device=images.device))[:, None, None, :]
    batch = torch.arange(n, device=images.device)[:, None, None, None]
    channels = torch.arange(images.shape[1], device=images.device)[None, :, None, None]
    return padded[batch, channels, rows, columns]


class SpatialSoftmax(nn.Module):
    """(N, C, h, w) feature maps → (N, 2K) expected keypoint coordinates in [-1, 1].

    Args:
        channels: C.
        keypoints: K.
        height: h.
        width: w.
    """

    def __init__(self, channels: int, keypoints: int, height: int, width: int) -> None:
        super().__init__()
        self.keypoints = nn.Conv2d(channels, keypoints, 1)
        y, x = torch.meshgrid(torch.linspace(-1, 1, height), torch.linspace(-1, 1, width), indexing="ij")
        self.register_buffer("grid", torch.stack([x.reshape(-1), y.reshape(-1)], dim=1))  # (h·w, 2)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """The keypoint coordinates (N, 2K) of feature maps (N, C, h, w)."""
        attention = torch.softmax(self.keypoints(features).flatten(2), dim=-1)  # (N, K, h·w)
        return (attention @ self.grid).flatten(1)


def _conv(channels_in: int, channels_out: int, stride: int, groups: int) -> nn.Sequential:
    """Conv2d 3×3 → GroupNorm → ReLU."""
    return nn.Sequential(nn.Conv2d(channels_in, channels_out, 3, stride, 1),
                         nn.GroupNorm(min(groups, channels_out), channels_out), nn.ReLU())


class ImageEncoder(nn.Module):
    """(N, 3, S, S) images in [-1, 1] → (N, ``features``).

    Args:
        image_size: S, in pixels; divisible by 2**downsample.
        channels: The convolutions' widths.
        downsample: The first convolutions with stride 2, in [1, len(channels)]; the rest have stride 1 and a
            residual connection.
        keypoints: The spatial-softmax keypoints.
        features: The output features.
        shift: The random shift in training, in pixels, in [0, image_size // 2).
        groups: The GroupNorm groups.

    Raises:
        ValueError: If ``downsample`` or ``shift`` is out of range.
    """

    def __init__(self, image_size: int = 64, channels: tuple[int, ...] = (16, 32, 32, 32), downsample: int = 2,
                 keypoints: int = 32, features: int = 64, shift: int = 4, groups: int = 8) -> None:
        super().__init__()
        if not 1 <= downsample <= len(channels) or image_size % 2**downsample:
            raise ValueError(f"downsample must lie in [1, len(channels) = {len(channels)}] with image_size "
                             f"{image_size} divisible by 2**downsample, got {downsample}")
        if isinstance(shift, bool) or not (isinstance(shift, int) and 0 <= shift < image_size // 2):
            raise ValueError(f"shift must be an int in [0, image_size // 2), got {shift!r}")
        self.shift = shift
        widths = [3, *channels]
        self.layers = nn.ModuleList(_conv(w_in, w_out, 2 if index < downsample else 1, groups)
                                    for index, (w_in, w_out) in enumerate(zip(widths[:-1], widths[1:])))
        self.residual = [index >= downsample and widths[index] == widths[index + 1] for index in range(len(channels))]
        side = image_size // 2**downsample
        self.pool = SpatialSoftmax(channels[-1], keypoints, side, side)
        self.head = nn.Linear(2 * keypoints, features)

    def forward(self, images: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Shifts the images at random in training mode only."""
        h = random_shift(images, self.shift, generator) if self.training else images
        for layer, residual in zip(self.layers, self.residual):
            h = layer(h) + h if residual else layer(h)
        return self.head(self.pool(h))
