import math

import numpy as np
import pytest
import torch

from adaptstep.policies.streams import VideoStreams, band_mask, sobel_boundary, temporal_band_pass
from adaptstep.policies.video_model import VideoDiffusion, VideoModelConfig

FLAT = math.sqrt(1e-6)  # sqrt(0 + 0 + eps)


def test_sobel_step_edge_has_the_closed_form_magnitude():
    height = 3.0
    features = torch.zeros(2, 3, 8, 8)
    features[:, 0, :, 4:] = height  # vertical step edge between columns 3 and 4
    features[:, 1, 5:, :] = height  # horizontal step edge between rows 4 and 5
    features[:, 2] = 7.0  # flat
    boundary = sobel_boundary(features)
    edge = math.sqrt((4 * height) ** 2 + 1e-6)  # g = (1 + 2 + 1)·height across the step, 0 along it
    expected = torch.full_like(features, FLAT)
    expected[:, 0, :, 3:5] = edge
    expected[:, 1, 4:6, :] = edge
    torch.testing.assert_close(boundary, expected)


def test_sobel_on_a_ramp_gives_eight_times_the_slope_inside():
    y, x = torch.meshgrid(torch.arange(6.0), torch.arange(6.0), indexing="ij")
    boundary = sobel_boundary(0.5 * x - 0.25 * y)
    torch.testing.assert_close(boundary[1:-1, 1:-1], torch.full((4, 4), math.sqrt(64 * (0.5**2 + 0.25**2) + 1e-6)))


def test_sobel_equals_the_depthwise_convolution_it_replaces():
    features = torch.randn(3, 5, 7, 6, dtype=torch.float64)
    kernel_x = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], dtype=torch.float64)
    padded = torch.nn.functional.pad(features.reshape(-1, 1, 7, 6), (1, 1, 1, 1), mode="replicate")
    gx, gy = torch.nn.functional.conv2d(padded, torch.stack([kernel_x, kernel_x.T])[:, None]).unbind(1)
    torch.testing.assert_close(sobel_boundary(features), torch.sqrt(gx**2 + gy**2 + 1e-6).reshape(features.shape))


def test_band_pass_matrix_equals_the_masked_fft():
    features = torch.randn(2, 16, 3, 4, dtype=torch.float64)
    spectrum = torch.fft.rfft(features, dim=1) * band_mask(16, 50.0, 3.0, 22.0)[None, :, None, None]
    torch.testing.assert_close(temporal_band_pass(features, 50.0, 3.0, 22.0),
                               torch.fft.irfft(spectrum, n=16, dim=1))


def signal(frequency_hz: float, length: int = 8, fps: float = 50.0) -> torch.Tensor:
    """cos(2π f n / fps) as features (1, length, 2, 3)."""
    n = torch.arange(length, dtype=torch.float64)
    return torch.cos(2 * math.pi * frequency_hz * n / fps)[None, :, None, None].expand(1, length, 2, 3)


def test_band_pass_removes_dc_and_out_of_band_and_keeps_in_band():
    constant = torch.full((2, 8, 3, 4, 4), 5.0)
    torch.testing.assert_close(temporal_band_pass(constant, 50.0, 3.0, 22.0), torch.zeros_like(constant),
                               atol=1e-6, rtol=0)
    inside, outside, nyquist = signal(12.5), signal(18.75), signal(25.0)  # bins 2, 3 and 4 of 8 frames at 50 fps
    mixture = 4.0 + inside + outside + nyquist
    torch.testing.assert_close(temporal_band_pass(mixture, 50.0, 3.0, 14.0), inside)
    torch.testing.assert_close(temporal_band_pass(mixture, 50.0, 3.0, 22.0), inside + outside)
    torch.testing.assert_close(temporal_band_pass(mixture, 50.0, 3.0, 25.0), mixture - 4.0)


@pytest.mark.parametrize("fps, low, high, name", [(50.0, 0.0, 10.0, "low_hz"), (50.0, 5.0, 30.0, "high_hz"),
                                                  (50.0, 8.0, 4.0, "low_hz"), (50.0, 1.0, 2.0, "low_hz"),
                                                  (-1.0, 1.0, 2.0, "fps")])
def test_bad_band_names_the_parameter(fps, low, high, name):
    with pytest.raises(ValueError, match=name):
        temporal_band_pass(torch.zeros(1, 8, 2), fps, low, high)


@pytest.fixture(scope="module")
def streams():
    torch.manual_seed(0)
    model = VideoDiffusion(VideoModelConfig(image_size=16, width=8, channel_mults=(1, 2)))
    return VideoStreams(model, history=4, fps=50.0, band=(5.0, 25.0))


def random_frames(batch: int, history: int, size: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (batch, history, size, size, 3), dtype=np.uint8)


def test_streams_are_frozen_and_have_the_documented_shapes(streams):
    assert not any(p.requires_grad for p in streams.parameters())
    assert streams.output_shapes == {"spatial": (16, 8, 8), "motion": (4, 16, 8, 8)}
    assert streams.window == 5  # the 4 frames of history and the video model's 1 context frame before them
    frames = random_frames(3, 5)
    out = streams(frames)
    assert out["spatial"].shape == (3, 16, 8, 8) and out["motion"].shape == (3, 4, 16, 8, 8)
    assert out["spatial"].grad_fn is None and out["motion"].grad_fn is None
    features = streams.video_model.frame_features(frames)[:, 1:]
    torch.testing.assert_close(out["spatial"], sobel_boundary(features[:, -1]))
    torch.testing.assert_close(out["motion"], temporal_band_pass(features, 50.0, 5.0, 25.0))
    filtered = streams.filter(features)
    torch.testing.assert_close(filtered["spatial"], out["spatial"])
    torch.testing.assert_close(filtered["motion"], out["motion"])
    assert (out["spatial"] >= FLAT - 1e-7).all()
    with pytest.raises(ValueError, match="features"):
        streams.filter(features[:, 1:])


def test_a_still_video_has_no_motion(streams):
    still = np.repeat(random_frames(2, 1), 5, axis=1)
    torch.testing.assert_close(streams(still)["motion"], torch.zeros(2, 4, 16, 8, 8), atol=1e-5, rtol=0)


@pytest.mark.parametrize("shape", [(1, 4, 16, 16, 3), (1, 5, 8, 8, 3), (1, 5, 16, 16, 1), (5, 16, 16, 3)])
def test_bad_frames_name_the_parameter(streams, shape):
    with pytest.raises(ValueError, match="frames"):
        streams(np.zeros(shape, np.uint8))


@pytest.mark.parametrize("settings, name", [({"history": 1}, "history"), ({"band": (0.0, 10.0)}, "band"),
                                            ({"band": (5.0, 30.0)}, "band"), ({"band": (1.0, 2.0)}, "band"),
                                            ({"band": 5.0}, "band"), ({"fps": 0.0}, "fps")])
def test_bad_settings_name_the_parameter(settings, name):
    model = VideoDiffusion(VideoModelConfig(image_size=16, width=8, channel_mults=(1, 2)))
    with pytest.raises(ValueError, match=name):
        VideoStreams(model, **{"history": 8, "fps": 50.0, "band": (3.0, 22.0), **settings})
