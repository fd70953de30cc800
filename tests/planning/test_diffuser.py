"""Diffuser: the temporal U-Net's contract, a short training run whose loss falls, plans that start at the state."""

import numpy as np
import pytest
import torch

from adaptstep.planning.diffuser import plan, train_diffuser, trajectory_starts
from adaptstep.planning.maze_data import make_maze_dataset
from adaptstep.planning.temporal_unet import TemporalUnet


@pytest.fixture(scope="module")
def dataset():
    return make_maze_dataset("maze2d-umaze", 1200, seed=0, episode_steps=300)


@pytest.fixture(scope="module")
def model(dataset):
    torch.set_num_threads(1)
    return train_diffuser(dataset, horizon=8, steps=300, batch_size=32, dim=16, lr=1e-3, goal_dims=2, device="cpu")


def test_temporal_unet_keeps_the_trajectory_shape():
    network = TemporalUnet(transition_dim=6, horizon=16, dim=8)
    assert network(torch.randn(3, 16, 6), torch.randn(3)).shape == (3, 16, 6)
    with pytest.raises(ValueError, match="horizon must be divisible by 4"):
        TemporalUnet(transition_dim=6, horizon=10, dim=8)


def test_windows_stay_inside_episodes(dataset):
    starts = trajectory_starts(dataset, 8)
    ends = np.flatnonzero(dataset.timeouts)
    assert not np.any((starts[:, None] <= ends) & (ends < starts[:, None] + 7))  # no episode end before the last step
    with pytest.raises(ValueError, match="horizon = 400"):
        trajectory_starts(dataset, 400)


def test_training_loss_falls(model):
    curve = model.metadata["loss_curve"]
    assert np.mean(curve[-10:]) < 0.7 * np.mean(curve[:10])  # measured: 1.01 → 0.49


def test_plans_start_at_the_state_and_end_at_the_goal(model, dataset):
    state, goal = dataset.observations[50], np.array([1.0, -1.0])
    result = plan(model, state, goal=goal, steps=6, solver="dpmpp2m", samples=4)
    assert result.states.shape == (4, 8, 4) and result.actions.shape == (4, 8, 2) and result.nfe == 6
    np.testing.assert_allclose(result.states[:, 0], np.broadcast_to(state, (4, 4)), atol=1e-5)
    np.testing.assert_allclose(result.states[:, -1, :2], np.broadcast_to(goal, (4, 2)), atol=1e-5)
    assert np.all(np.isfinite(result.actions))
    with pytest.raises(ValueError, match="state must have 4 entries"):
        plan(model, state[:3])
    with pytest.raises(ValueError, match="goal must have goal_dims = 2"):
        plan(model, state, goal=np.zeros(4))


def test_plans_continue_from_the_state(model, dataset):
    """Even after 300 training steps a plan's second state lies near its first (measured 0.82 in position
    units) and far closer than a random state of the data is (1.52)."""
    rng = np.random.default_rng(0)
    near, random = [], []
    for index in range(0, 1100, 100):
        state = dataset.observations[index]
        result = plan(model, state, steps=6, solver="dpmpp2m", samples=8)
        near.append(np.linalg.norm(result.states[:, 1, :2] - state[:2], axis=1).mean())
        random.append(np.linalg.norm(dataset.observations[rng.integers(0, 1200, 8), :2] - state[:2], axis=1).mean())
    assert np.mean(near) < 0.75 * np.mean(random)
