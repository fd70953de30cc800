from types import SimpleNamespace

import numpy as np
import pytest
import torch

from adaptstep.policies.demos import Demonstrations
from adaptstep.policies.video_model import (
    VideoDiffusion,
    VideoModelConfig,
    load_video_model,
    save_video_model,
    train_video_model,
)

TINY = {"width": 8, "channel_mults": (1, 2), "horizon": 2}


def moving_squares(episodes: int = 8, length: int = 12, size: int = 16, side: int = 4, seed: int = 0):
    """Demonstrations of a coloured square moving diagonally and bouncing off the borders (zero proprio/actions)."""
    rng = np.random.default_rng(seed)
    frames = np.zeros((episodes, length, size, size, 3), np.uint8)
    for episode in range(episodes):
        x, y = rng.integers(0, size - side, 2)
        vx, vy = rng.choice([-1, 1], 2)
        for step in range(length):
            frames[episode, step, y:y + side, x:x + side] = (255, 64, 0)
            vx, vy = (-vx if not 0 <= x + vx <= size - side else vx), (-vy if not 0 <= y + vy <= size - side else vy)
            x, y = x + vx, y + vy
    steps = episodes * length
    return Demonstrations(frames.reshape(steps, size, size, 3), np.zeros((steps, 2), np.float32),
                          np.zeros((steps, 2), np.float32), np.arange(1, episodes + 1, dtype=np.int64) * length,
                          np.ones(episodes, bool))


@pytest.fixture(scope="module")
def trained():
    return train_video_model(moving_squares(), steps=80, batch_size=16, lr=3e-3, seed=0, device="cpu", **TINY)


def test_loss_falls_on_moving_squares(trained):
    curve = trained.metadata["loss_curve"]
    assert curve[0] > 0.9  # the zero-initialised output layer predicts ε̂ = 0 at first: loss E|ε|² = 1
    assert trained.metadata["final_loss"] < 0.3 * curve[0]
    assert not any(p.requires_grad for p in trained.parameters())
    assert trained.config == VideoModelConfig(image_size=16, **TINY)


def test_frame_features_shape_and_causality(trained):
    frames = moving_squares(episodes=2, length=5, seed=1).images.reshape(2, 5, 16, 16, 3)
    features = trained.frame_features(frames)
    assert features.shape == (2, 5, 16, 8, 8) == (2, 5, *trained.feature_shape)
    assert torch.isfinite(features).all() and features.grad_fn is None
    changed = frames.copy()
    changed[:, -1] = 255 - changed[:, -1]
    other = trained.frame_features(torch.as_tensor(changed))
    torch.testing.assert_close(other[:, :-1], features[:, :-1])  # frame s sees only frames <= s
    assert not torch.allclose(other[:, -1], features[:, -1])


def test_skipped_frames_serve_only_as_context(trained):
    frames = moving_squares(episodes=2, length=6, seed=2).images.reshape(2, 6, 16, 16, 3)
    features = trained.frame_features(frames)
    torch.testing.assert_close(trained.frame_features(frames, skip=2), features[:, 2:])
    with pytest.raises(ValueError, match="skip"):
        trained.frame_features(frames, skip=6)


def test_episode_features_are_each_frame_in_its_own_episode(trained):
    demos = moving_squares(episodes=3, length=5, seed=3)
    bank = trained.episode_features(demos.images, demos.episode_ends)
    assert bank.dtype == torch.float16 and bank.device.type == "cpu" and bank.shape == (15, *trained.feature_shape)
    per_episode = trained.frame_features(demos.images.reshape(3, 5, 16, 16, 3))  # context clamped at each start
    torch.testing.assert_close(bank.float(), per_episode.flatten(0, 1), atol=2e-3, rtol=2e-3)


def test_save_and_load_round_trip(trained, tmp_path):
    path = save_video_model(trained, tmp_path / "video.pt")
    loaded = load_video_model(path, device="cpu")
    assert loaded.config == trained.config and loaded.metadata == trained.metadata
    frames = moving_squares(episodes=1, length=3).images[None]
    torch.testing.assert_close(loaded.frame_features(frames), trained.frame_features(frames))
    with pytest.raises(FileNotFoundError, match="video model"):
        load_video_model(tmp_path / "missing.pt")


@pytest.mark.parametrize("shape, dtype", [((1, 2, 8, 8, 3), np.uint8), ((1, 2, 16, 16, 4), np.uint8),
                                          ((1, 2, 16, 16, 3), np.float32), ((16, 16, 3), np.uint8)])
def test_bad_frames_name_the_parameter(shape, dtype):
    model = VideoDiffusion(VideoModelConfig(image_size=16, **TINY))
    with pytest.raises(ValueError, match="frames"):
        model.frame_features(np.zeros(shape, dtype))


@pytest.mark.parametrize("settings, name", [({"image_size": 17}, "image_size"), ({"width": 0}, "width"),
                                            ({"channel_mults": ()}, "channel_mults"),
                                            ({"schedule": "nope"}, "schedule"), ({"context": True}, "context")])
def test_bad_config_names_the_field(settings, name):
    with pytest.raises(ValueError, match=name):
        VideoModelConfig(**{"channel_mults": (1, 2), **settings})


def test_bad_training_input_names_the_parameter():
    demos = moving_squares(episodes=2, length=4)
    with pytest.raises(ValueError, match="steps"):
        train_video_model(demos, steps=0)
    with pytest.raises(ValueError, match="demos.images"):
        train_video_model(SimpleNamespace(images=demos.images[..., :2], episode_ends=demos.episode_ends), steps=1)
    with pytest.raises(ValueError, match="demos.episode_ends"):
        train_video_model(SimpleNamespace(images=demos.images, episode_ends=np.array([3])), steps=1)
