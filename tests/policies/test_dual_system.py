from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from adaptstep.policies.action_diffusion import sample_chunks
from adaptstep.policies.dual_system import (
    DualSystemConfig,
    DualSystemPolicy,
    StreamProjector,
    load_dual_system,
    save_dual_system,
    sincos_grid_embedding,
    train_dual_system,
)
from adaptstep.policies.video_model import VideoDiffusion, VideoModelConfig
from adaptstep.policies.windows import window_indices

SIZE, HISTORY = 16, 4
WINDOW = HISTORY + 1  # System 2 sees the video model's one context frame before the history
TINY = {"history": HISTORY, "band": (5.0, 25.0), "pred_horizon": 8, "motion_patch": (2, 4), "width": 32, "depth": 2,
        "heads": 2}


def square_demos(episodes: int = 6, length: int = 12, seed: int = 0) -> SimpleNamespace:
    """A square moving at a constant velocity per episode; the action is that velocity, the proprio its position."""
    rng = np.random.default_rng(seed)
    images = np.zeros((episodes, length, SIZE, SIZE, 3), np.uint8)
    proprio = np.zeros((episodes, length, 3), np.float32)
    actions = np.zeros((episodes, length, 2), np.float32)
    for episode in range(episodes):
        position, velocity = rng.uniform(2, 10, 2), rng.choice([-0.5, 0.5], 2)
        for step in range(length):
            x, y = np.clip(position + step * velocity, 0, SIZE - 4).astype(int)
            images[episode, step, y:y + 4, x:x + 4] = (255, 64, 0)
            proprio[episode, step] = (x / SIZE, y / SIZE, step / length)
            actions[episode, step] = velocity
    return SimpleNamespace(images=images.reshape(-1, SIZE, SIZE, 3), proprio=proprio.reshape(-1, 3),
                           actions=actions.reshape(-1, 2), episode_ends=np.arange(1, episodes + 1) * length)


def video_model() -> VideoDiffusion:
    torch.manual_seed(0)
    return VideoDiffusion(VideoModelConfig(image_size=SIZE, width=8, channel_mults=(1, 2))).requires_grad_(False)


@pytest.fixture(scope="module")
def demos():
    return square_demos()


@pytest.fixture(scope="module")
def trained(demos):
    return train_dual_system(demos, video_model(), steps=200, batch_size=16, lr=2e-3, seed=0, device="cpu", **TINY)


def frames_of(demos, windows: list[int]) -> np.ndarray:
    index, _ = window_indices(demos.episode_ends, 2, 8, history=WINDOW)
    return demos.images[index[windows]]


def proprio_of(demos, windows: list[int]) -> np.ndarray:
    index, _ = window_indices(demos.episode_ends, 2, 8)
    return demos.proprio[index[windows]]


def test_sincos_grid_embedding_matches_the_closed_form():
    i = torch.arange(4.0)
    one_axis = torch.stack([torch.sin(i), torch.sin(i / 100), torch.cos(i), torch.cos(i / 100)], dim=1)
    assert torch.allclose(sincos_grid_embedding((1, 1, 4), 4)[0], one_axis)
    two_axes = sincos_grid_embedding((2, 1, 3), 5)[0]  # width 5: 2 + 2 columns, one zero column
    rows, columns = torch.meshgrid(torch.arange(2.0), torch.arange(3.0), indexing="ij")
    expected = torch.stack([rows.sin(), rows.cos(), columns.sin(), columns.cos(), 0 * rows], dim=-1).reshape(6, 5)
    assert torch.allclose(two_axes, expected)
    assert StreamProjector((3, 8, 8), 2, 16).embedding.data.equal(sincos_grid_embedding((1, 4, 4), 16))


def test_training_lowers_the_loss_and_leaves_the_video_model_frozen(trained):
    curve = trained.metadata["loss_curve"]
    assert 0.8 < curve[0] < 1.2  # the zero-initialised head predicts ε̂ = 0 at first: loss E|ε|² = 1
    assert trained.metadata["final_loss"] < 0.5 * curve[0]
    assert trained.metadata["windows"] == 72 and trained.metadata["feature_seconds"] > 0
    assert trained.config == DualSystemConfig(proprio_dim=3, action_dim=2, image_size=SIZE, **TINY)
    original = video_model()
    for name, value in original.state_dict().items():
        assert torch.equal(trained.video_model.state_dict()[name], value)
    assert not any(p.requires_grad for p in trained.parameters())


def test_motion_dropout_trains_on_still_windows_too(demos):
    """With every sample's motion stream zeroed the head can only learn from the spatial stream and proprio: the
    loss still falls, and the config keeps the setting."""
    policy = train_dual_system(demos, video_model(), steps=60, batch_size=16, lr=2e-3, seed=0, device="cpu",
                               **{**TINY, "motion_dropout": 0.999})
    assert policy.config.motion_dropout == 0.999
    assert policy.metadata["final_loss"] < 0.5 * policy.metadata["loss_curve"][0]


def test_proprio_dropout_blinds_that_share_of_samples_to_the_middle_of_the_range(demos, monkeypatch):
    """proprio_dropout = 0.5: about half of the drawn samples carry every proprio vector at its range's middle (0
    once normalised), the others their true proprio; the loss still falls and the config keeps the setting."""
    drawn = []
    loss = DualSystemPolicy.compute_loss

    def record(self, batch, generator):
        drawn.append(self.proprio_normalizer.normalize(batch["proprio"]))
        return loss(self, batch, generator)

    monkeypatch.setattr(DualSystemPolicy, "compute_loss", record)
    policy = train_dual_system(demos, video_model(), steps=60, batch_size=16, lr=2e-3, seed=0, device="cpu",
                               **{**TINY, "proprio_dropout": 0.5})
    normalised = torch.cat(drawn)  # (60 · 16, obs_horizon, 3)
    blind = (normalised.abs() < 1e-6).flatten(1).all(1)
    assert 0.4 < blind.float().mean() < 0.6
    seen = policy.proprio_normalizer.unnormalize(normalised[~blind]).numpy().reshape(-1, 1, 3)
    assert np.abs(seen - demos.proprio[None]).max(-1).min(-1).max() < 1e-5  # each one a demo's proprio
    assert policy.config.proprio_dropout == 0.5
    assert policy.metadata["final_loss"] < 0.5 * policy.metadata["loss_curve"][0]


def test_first_call_weight_and_stale_calls_train_and_are_kept(demos):
    policy = train_dual_system(demos, video_model(), steps=60, batch_size=16, lr=2e-3, seed=0, device="cpu",
                               **{**TINY, "first_call_weight": 10, "stale_calls": 3})
    assert (policy.config.first_call_weight, policy.config.stale_calls) == (10, 3)
    assert policy.metadata["final_loss"] < 0.5 * policy.metadata["loss_curve"][0]


def test_windows_where_the_expert_waits_are_never_drawn(demos, monkeypatch):
    """Episode 0 marked as waiting throughout (its actions a value no other step has): no batch holds them."""
    waits = np.zeros(len(demos.actions), bool)
    waits[:demos.episode_ends[0]] = True
    actions = demos.actions.copy()
    actions[waits] = 0.25
    marked = SimpleNamespace(**{**vars(demos), "actions": actions, "expert_waits": waits,
                                "target_jumps": np.zeros(len(actions), np.int64)})
    drawn = []
    loss = DualSystemPolicy.compute_loss
    monkeypatch.setattr(DualSystemPolicy, "compute_loss",
                        lambda self, batch, generator: drawn.append(batch["actions"]) or loss(self, batch, generator))
    train_dual_system(marked, video_model(), steps=20, batch_size=16, seed=0, device="cpu", **TINY)
    assert len(drawn) == 20 and not any(bool((batch == 0.25).any()) for batch in drawn)


def test_warm_start_begins_from_the_policy_and_keeps_its_normalisers(trained, demos):
    """Demos whose actions span a wider range: a fresh policy would refit the normaliser, a warm start keeps it."""
    wider = SimpleNamespace(**{**vars(demos), "actions": demos.actions * 3})
    warm = train_dual_system(wider, None, init=trained, steps=1, batch_size=4, lr=1e-9, seed=0, device="cpu",
                             first_call_weight=5)
    assert warm.config == replace(trained.config, first_call_weight=5) and warm.metadata["warm_start"] is not None
    for (name, value), (_, before) in zip(warm.state_dict().items(), trained.state_dict().items()):
        torch.testing.assert_close(value, before, atol=1e-6, rtol=0, msg=name)
    frames, proprio = frames_of(demos, [0, 20]), proprio_of(demos, [0, 20])
    np.testing.assert_allclose(warm.system1(warm.system2(frames), proprio, seed=1)[0],
                               trained.system1(trained.system2(frames), proprio, seed=1)[0], atol=1e-5)


def test_warm_start_bad_input(trained, demos):
    with pytest.raises(ValueError, match="exactly one of video_model"):
        train_dual_system(demos, video_model(), init=trained, steps=1, device="cpu")
    with pytest.raises(ValueError, match="exactly one of video_model"):
        train_dual_system(demos, None, steps=1, device="cpu")
    with pytest.raises(ValueError, match="keep the shapes of init's weights"):
        train_dual_system(demos, None, init=trained, steps=1, device="cpu", width=16)
    other = SimpleNamespace(**{**vars(demos), "proprio": np.zeros((len(demos.proprio), 5), np.float32)})
    with pytest.raises(ValueError, match="init's shapes"):
        train_dual_system(other, None, init=trained, steps=1, device="cpu")


def test_system2_then_system1_shapes_and_action_range(trained, demos):
    frames, proprio = frames_of(demos, [0, 20, 50]), proprio_of(demos, [0, 20, 50])
    tokens = trained.system2(frames)
    assert tokens.shape == (3, 16 + 8, 32)  # 8×8 spatial map in 2×2 patches; 4 frames × 8×8 in 2×4×4 tubelets
    actions, nfe = trained.system1(tokens, proprio, seed=0)  # the config's 5 DPM-Solver++(2M) steps
    assert isinstance(actions, np.ndarray) and actions.dtype == np.float32
    assert actions.shape == (3, 8, 2) and nfe == 5
    assert trained.system1(tokens, proprio, steps=3, solver="ddim", seed=0)[1] == 3
    assert np.all(np.abs(actions) < 0.6)  # near the demo actions. range ±0.5: the solver clips x̂0 to it


def test_cached_tokens_give_the_same_actions_as_recomputed_ones(trained, demos):
    frames, proprio = frames_of(demos, [5, 40]), proprio_of(demos, [5, 40])
    cached = trained.system2(frames)
    first, _ = trained.system1(cached, proprio, seed=3)
    again, _ = trained.system1(cached, proprio, seed=3)
    recomputed, _ = trained.system1(trained.system2(torch.as_tensor(frames)), proprio, seed=3)
    np.testing.assert_array_equal(first, again)
    np.testing.assert_array_equal(first, recomputed)
    # the per-call key/value memory of the context equals recomputing it at every solver step
    condition = trained.condition(cached, proprio)
    chunks, _ = sample_chunks(trained.head, condition, 2, (8, 2), trained.schedule, 5, "dpmpp2m", 3)
    np.testing.assert_allclose(trained.action_normalizer.unnormalize(chunks).numpy(), first, atol=1e-5)


def test_training_features_match_system2_on_the_same_windows(trained, demos):
    """Training filters gathered per-frame features; System 2 runs on the window's frames: the streams agree."""
    bank = trained.video_model.episode_features(demos.images, demos.episode_ends)
    assert bank.dtype == torch.float16 and bank.shape == (len(demos.images), *trained.video_model.feature_shape)
    windows = [0, 2, 13, 71]  # padded at the episode start, partly padded, inside an episode, the last step
    index, _ = window_indices(demos.episode_ends, 2, 8, history=HISTORY)
    stored = trained.streams.filter(bank[index[windows]].float())
    live = trained.streams(frames_of(demos, windows))
    for name in ("spatial", "motion"):
        torch.testing.assert_close(stored[name], live[name], atol=2e-3, rtol=2e-3)


def test_save_and_load_round_trip_gives_identical_actions(trained, demos, tmp_path):
    path = save_dual_system(trained, tmp_path / "dual.pt")
    loaded = load_dual_system(path, device="cpu")
    assert loaded.config == trained.config and loaded.metadata == trained.metadata
    frames, proprio = frames_of(demos, [7]), proprio_of(demos, [7])
    expected, _ = trained.system1(trained.system2(frames), proprio, seed=11)
    actions, _ = loaded.system1(loaded.system2(frames), proprio, seed=11)
    np.testing.assert_array_equal(actions, expected)
    with pytest.raises(FileNotFoundError, match="dual system"):
        load_dual_system(tmp_path / "missing.pt")


@pytest.mark.parametrize("shape, dtype", [((1, WINDOW, 8, 8, 3), np.uint8), ((1, WINDOW, SIZE, SIZE, 4), np.uint8),
                                          ((1, HISTORY, SIZE, SIZE, 3), np.uint8),
                                          ((1, WINDOW, SIZE, SIZE, 3), np.float32)])
def test_bad_frames_name_the_parameter(trained, shape, dtype):
    with pytest.raises(ValueError, match="frames"):
        trained.system2(np.zeros(shape, dtype))


def test_bad_tokens_proprio_and_settings_name_the_parameter(trained, demos):
    tokens = trained.system2(frames_of(demos, [0]))
    with pytest.raises(ValueError, match="proprio"):
        trained.system1(tokens, np.zeros((1, 3, 3), np.float32))
    with pytest.raises(ValueError, match="tokens"):
        trained.system1(tokens[..., :16], proprio_of(demos, [0]))
    with pytest.raises(ValueError, match="steps"):
        trained.system1(tokens, proprio_of(demos, [0]), steps=0)
    with pytest.raises(ValueError, match="history"):
        DualSystemConfig(proprio_dim=3, action_dim=2, history=1)
    with pytest.raises(ValueError, match="solver"):
        DualSystemConfig(proprio_dim=3, action_dim=2, solver="rk4")
    for name in ("motion_dropout", "proprio_dropout"):
        for bad in (1.0, -0.1, True):
            with pytest.raises(ValueError, match=name):
                DualSystemConfig(proprio_dim=3, action_dim=2, **{name: bad})
    for bad in (-1, 1.5, True):
        with pytest.raises(ValueError, match="stale_calls"):
            DualSystemConfig(proprio_dim=3, action_dim=2, stale_calls=bad)
    for bad in (0.5, float("nan"), True):
        with pytest.raises(ValueError, match="first_call_weight"):
            DualSystemConfig(proprio_dim=3, action_dim=2, first_call_weight=bad)
    with pytest.raises(ValueError, match="motion_patch"):
        DualSystemConfig(proprio_dim=3, action_dim=2, motion_patch=(2,))
    with pytest.raises(ValueError, match="image_size"):
        DualSystemPolicy(DualSystemConfig(proprio_dim=3, action_dim=2, **TINY), video_model())
    with pytest.raises(ValueError, match="patch"):
        DualSystemPolicy(DualSystemConfig(proprio_dim=3, action_dim=2, image_size=SIZE, **{**TINY, "spatial_patch": 3}),
                         video_model())
    with pytest.raises(ValueError, match="steps"):
        train_dual_system(demos, video_model(), steps=0)
