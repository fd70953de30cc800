from types import SimpleNamespace

import numpy as np
import pytest
import torch

from adaptstep.policies.diffusion_policy import (
    DiffusionPolicy,
    DiffusionPolicyConfig,
    load_diffusion_policy,
    save_diffusion_policy,
    train_diffusion_policy,
)
from adaptstep.policies.unet1d import ConditionalUnet1D
from adaptstep.policies.vision import SpatialSoftmax, images_to_tensor, random_shift
from adaptstep.policies.windows import window_indices

TINY = {"encoder_channels": (8, 8), "keypoints": 4, "image_features": 8, "shift": 1, "down_dims": (16, 32),
        "step_embed_dim": 16, "pred_horizon": 4, "action_steps": 2}
SIZE = 16


def synthetic_demos(episodes: int = 8, steps: int = 12, seed: int = 0) -> SimpleNamespace:
    """Episodes whose constant 1-D action is +0.5 or −0.5, told only by a bright square in the image's left or right
    half (the proprio is noise). Chunks are short and 1-D: a long constant chunk would give its sign away in x_t at
    all but the highest noise levels, and the condition would be learned far more slowly."""
    rng = np.random.default_rng(seed)
    images, actions = [], []
    for episode in range(episodes):
        side = episode % 2
        image = np.zeros((SIZE, SIZE, 3), np.uint8)
        image[4:10, 1 + side * 8: 7 + side * 8] = 255
        images.append(np.repeat(image[None], steps, axis=0))
        actions.append(np.full((steps, 1), 0.5 if side else -0.5, np.float32))
    n = episodes * steps
    return SimpleNamespace(images=np.concatenate(images), proprio=rng.normal(size=(n, 3)).astype(np.float32),
                           actions=np.concatenate(actions), episode_ends=np.arange(1, episodes + 1) * steps)


@pytest.fixture(scope="module")
def demos():
    return synthetic_demos()


@pytest.fixture(scope="module")
def policy(demos):
    return train_diffusion_policy(demos, steps=250, batch_size=32, lr=2e-3, seed=0, device="cpu", **TINY)


def test_windows_where_the_expert_waits_are_never_drawn(demos, monkeypatch):
    """Episode 0 marked as waiting throughout (its actions a value no other step has): no batch holds them."""
    waits = np.zeros(len(demos.actions), bool)
    waits[:demos.episode_ends[0]] = True
    actions = demos.actions.copy()
    actions[waits] = 0.25
    marked = SimpleNamespace(**{**vars(demos), "actions": actions, "expert_waits": waits})
    drawn = []
    loss = DiffusionPolicy.compute_loss
    monkeypatch.setattr(DiffusionPolicy, "compute_loss",
                        lambda self, batch, generator: drawn.append(batch["actions"]) or loss(self, batch, generator))
    train_diffusion_policy(marked, steps=20, batch_size=16, seed=0, device="cpu", **TINY)
    assert len(drawn) == 20 and not any(bool((batch == 0.25).any()) for batch in drawn)


def observation(demos, index: int):
    return demos.images[None, [index, index]], demos.proprio[None, [index, index]]


def test_training_lowers_the_loss_and_learns_the_image_condition(policy, demos):
    curve = policy.metadata["loss_curve"]
    assert np.mean(curve[-10:]) < 0.3 * np.mean(curve[:10])
    assert policy.metadata["final_loss"] == pytest.approx(np.mean(curve[-10:]), rel=0.5)
    observed, acted = window_indices(demos.episode_ends, 2, 4)
    batch = {"images": demos.images[observed], "proprio": demos.proprio[observed], "actions": demos.actions[acted]}
    swapped = dict(batch, images=demos.images[(observed + 12) % len(demos.images)])  # the other side's image
    with torch.no_grad():
        right, wrong = (np.mean([policy.compute_loss(data, torch.Generator().manual_seed(k)).item() for k in range(4)])
                        for data in (batch, swapped))
    assert wrong > 3 * right
    for index, target in ((0, -0.5), (12, 0.5)):  # episode 0 shows the square left, episode 1 right
        images, proprio = observation(demos, index)
        actions, _ = policy.predict(np.repeat(images, 8, 0), np.repeat(proprio, 8, 0), seed=0)
        assert np.abs(actions.mean() - target) < 0.15


def test_predict_returns_seeded_chunks_of_the_configured_shape(policy, demos):
    images, proprio = observation(demos, 3)
    images, proprio = np.repeat(images, 3, 0), np.repeat(proprio, 3, 0)
    actions, nfe = policy.predict(images, proprio, steps=10, seed=5)
    assert actions.shape == (3, 4, 1) and actions.dtype == np.float32 and nfe == 10
    assert np.array_equal(actions, policy.predict(images, proprio, steps=10, seed=5)[0])
    assert not np.array_equal(actions, policy.predict(images, proprio, steps=10, seed=6)[0])
    assert np.all(np.abs(actions) <= 0.5 + 0.02)  # x̂0 is clipped to the demo actions' range; the last step adds σ ε̂
    assert policy.predict(torch.as_tensor(images), torch.as_tensor(proprio), steps=4, solver="dpmpp2m")[1] == 4


def test_save_and_load_give_identical_predictions(policy, demos, tmp_path):
    path = save_diffusion_policy(policy, tmp_path / "policy.pt")
    loaded = load_diffusion_policy(path, device="cpu")
    assert loaded.config == policy.config and loaded.metadata["steps"] == 250
    images, proprio = observation(demos, 20)
    assert np.array_equal(policy.predict(images, proprio, seed=1)[0], loaded.predict(images, proprio, seed=1)[0])
    with pytest.raises(FileNotFoundError, match="diffusion policy"):
        load_diffusion_policy(tmp_path / "missing.pt")


def test_training_repeats_with_a_seed(demos):
    first, second = (train_diffusion_policy(demos, steps=3, batch_size=4, seed=1, device="cpu", **TINY)
                     for _ in range(2))
    assert first.metadata["loss_curve"] == second.metadata["loss_curve"]
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values()))


@pytest.mark.parametrize("images, message", [
    (np.zeros((1, 2, 12, 12, 3), np.uint8), r"\(16, 16, 3\)"),  # wrong size
    (np.zeros((1, 2, 16, 16, 4), np.uint8), r"\(16, 16, 3\)"),  # wrong channels
    (np.zeros((1, 2, 16, 16, 3), np.float32), "uint8"),  # wrong dtype
    (np.zeros((1, 3, 16, 16, 3), np.uint8), "obs_horizon"),  # wrong history length
])
def test_bad_images_are_rejected(policy, images, message):
    with pytest.raises(ValueError, match="images") as error:
        policy.predict(images, np.zeros((1, 2, 3), np.float32))
    assert error.match(message)


def test_bad_proprio_settings_and_config_are_rejected(policy, demos):
    images, _ = observation(demos, 0)
    with pytest.raises(ValueError, match="proprio"):
        policy.predict(images, np.zeros((1, 2, 5), np.float32))
    with pytest.raises(ValueError, match="steps"):
        policy.predict(images, np.zeros((1, 2, 3), np.float32), steps=0)
    with pytest.raises(ValueError, match="actions"):
        policy.compute_loss({"images": images, "proprio": np.zeros((1, 2, 3)), "actions": np.zeros((1, 8, 1))})
    with pytest.raises(ValueError, match="batch_size"):
        train_diffusion_policy(demos, steps=1, batch_size=0)
    with pytest.raises(ValueError, match="pred_horizon"):
        DiffusionPolicyConfig(proprio_dim=3, action_dim=2, pred_horizon=10)
    with pytest.raises(ValueError, match="action_steps"):
        DiffusionPolicyConfig(proprio_dim=3, action_dim=1, action_steps=16)


def test_spatial_softmax_finds_a_peak_and_shifts_translate_images():
    pool = SpatialSoftmax(1, 1, 5, 5)
    with torch.no_grad():
        pool.keypoints.weight.fill_(1.0)
        pool.keypoints.bias.zero_()
    features = torch.zeros(1, 1, 5, 5)
    features[0, 0, 1, 4] = 50.0  # row 1 (y = −0.5), column 4 (x = 1)
    assert torch.allclose(pool(features), torch.tensor([[1.0, -0.5]]), atol=1e-4)
    images = torch.arange(2 * 3 * 6 * 6, dtype=torch.float32).reshape(2, 3, 6, 6)
    shifted = random_shift(images, 2, torch.Generator().manual_seed(0))
    assert shifted.shape == images.shape and torch.equal(random_shift(images, 0), images)
    for original, moved in zip(images, shifted):  # the interior 2×2 block is in the window for every offset
        assert any(torch.equal(moved[:, 2 - dy: 4 - dy, 2 - dx: 4 - dx], original[:, 2:4, 2:4])
                   for dy in range(-2, 3) for dx in range(-2, 3))
    pixels = images_to_tensor(np.full((2, 4, 4, 3), 255, np.uint8), 4, torch.device("cpu"))
    assert pixels.shape == (2, 3, 4, 4) and torch.all(pixels == 1.0)


def test_unet_keeps_the_chunk_shape_and_uses_its_condition():
    torch.manual_seed(0)
    unet = ConditionalUnet1D(action_dim=2, global_cond_dim=4, down_dims=(16, 32, 64), step_embed_dim=16)
    x, t = torch.randn(3, 16, 2), torch.full((3,), 0.5, dtype=torch.float64)
    out = unet(x, t, torch.zeros(3, 4))
    assert out.shape == x.shape
    assert not torch.allclose(out, unet(x, t, torch.ones(3, 4)))
    assert not torch.allclose(out, unet(x, t / 2, torch.zeros(3, 4)))
