"""Hopper data as D4RL made it: a SAC run leaves checkpoints with returns, and its rollouts are consistent data."""

import hashlib
import json

import numpy as np
import pytest
import torch

from adaptstep.planning import read_d4rl, write_d4rl
from adaptstep.planning.locomotion_data import make_locomotion_dataset, pick_checkpoint, train_behaviour_policy


@pytest.fixture(scope="module")
def log_path(tmp_path_factory):
    """A tiny SAC run: 300 steps, learning from step 100, a checkpoint every 150 steps."""
    torch.set_num_threads(1)
    return train_behaviour_policy(steps=300, seed=0, out_dir=tmp_path_factory.mktemp("sac"), eval_every=150,
                                  eval_episodes=1, learning_starts=100)


@pytest.fixture(scope="module")
def dataset(log_path):
    return make_locomotion_dataset("hopper-medium", pick_checkpoint(log_path, 0.0), transitions=500, seed=3)


def test_training_saves_checkpoints_with_their_returns(log_path):
    log = json.loads(log_path.read_text())
    assert log["env_id"] == "Hopper-v5" and log["learning_starts"] == 100
    assert [entry["step"] for entry in log["checkpoints"]] == [150, 300]
    for entry in log["checkpoints"]:
        assert entry["path"].endswith(f"sac_{entry['step']:07d}.zip")
        assert log_path.parent.joinpath(f"sac_{entry['step']:07d}.zip").is_file()
        assert np.isfinite(entry["mean_return"]) and entry["std_return"] == 0.0  # one episode
    assert not list(log_path.parent.glob(".*"))  # atomic writes leave no temporaries


def test_pick_checkpoint_takes_the_return_closest_to_the_target():
    log = {"checkpoints": [{"path": f"/c/{step}.zip", "mean_return": value}
                           for step, value in ((1, 300.0), (2, 1150.0), (3, 2500.0), (4, 900.0))]}
    assert str(pick_checkpoint(log, 1078.1)) == "/c/2.zip"
    assert str(pick_checkpoint(log, 3234.3)) == "/c/3.zip"
    with pytest.raises(ValueError, match="no checkpoints"):
        pick_checkpoint({"checkpoints": []}, 1000.0)


def test_rollouts_are_consistent_transitions(dataset):
    n = 500
    assert len(dataset) == n and dataset.observations.shape == (n, 11) and dataset.actions.shape == (n, 3)
    assert dataset.infos["qpos"].shape == (n, 6) and dataset.infos["qvel"].shape == (n, 6)
    assert np.isfinite(dataset.infos["action_log_probs"]).all() and np.abs(dataset.actions).max() <= 1.0
    # Hopper's observation is (qpos[1:], clip(qvel, -10, 10)) of the state before the step
    np.testing.assert_allclose(dataset.observations[:, :5], dataset.infos["qpos"][:, 1:], atol=1e-6)
    np.testing.assert_allclose(dataset.observations[:, 5:], np.clip(dataset.infos["qvel"], -10, 10), atol=1e-5)
    episodes = dataset.episodes()
    assert len(episodes) >= 2 and not (dataset.terminals & dataset.timeouts).any()
    for episode in episodes:
        ends = dataset.terminals[episode] | dataset.timeouts[episode]
        assert ends[-1] and not ends[:-1].any() and episode.stop - episode.start <= 1000
        np.testing.assert_array_equal(dataset.next_observations[episode][:-1], dataset.observations[episode][1:])
    # a terminal next state is unhealthy: height z <= 0.7 or |angle| >= 0.2 (Hopper-v5's healthy ranges)
    height, angle = dataset.next_observations[dataset.terminals, 0], dataset.next_observations[dataset.terminals, 1]
    assert dataset.terminals.any() and ((height <= 0.7) | (np.abs(angle) >= 0.2)).all()


def test_metadata_names_the_policy_and_the_data_round_trips(dataset, log_path, tmp_path):
    policy = pick_checkpoint(log_path, 0.0)
    entry = next(e for e in json.loads(log_path.read_text())["checkpoints"] if e["path"] == str(policy))
    assert dataset.metadata["policy_sha256"] == hashlib.sha256(policy.read_bytes()).hexdigest()
    assert dataset.metadata["policy_eval_return"] == entry["mean_return"]
    assert dataset.metadata["policy_training_steps"] == entry["step"] and dataset.metadata["env_id"] == "Hopper-v5"
    assert set(dataset.metadata["versions"]) >= {"gymnasium", "mujoco", "stable-baselines3"}
    back = read_d4rl(write_d4rl(dataset, tmp_path / "hopper.hdf5"))
    for key in ("observations", "actions", "rewards", "terminals", "timeouts", "next_observations"):
        np.testing.assert_array_equal(getattr(back, key), getattr(dataset, key), err_msg=key)
    for key in ("qpos", "qvel", "action_log_probs"):
        np.testing.assert_array_equal(back.infos[key], dataset.infos[key], err_msg=key)
    assert back.metadata == dataset.metadata


def test_actions_are_sampled_and_reproducible_from_the_seed(dataset, log_path):
    policy = pick_checkpoint(log_path, 0.0)
    again = make_locomotion_dataset("hopper-medium", policy, transitions=500, seed=3)
    other = make_locomotion_dataset("hopper-medium", policy, transitions=500, seed=4)
    np.testing.assert_array_equal(again.actions, dataset.actions)
    assert not np.allclose(other.actions[:10], dataset.actions[:10])


def test_bad_arguments_are_rejected(log_path, tmp_path):
    policy = pick_checkpoint(log_path, 0.0)
    with pytest.raises(ValueError, match="name must be one of"):
        make_locomotion_dataset("walker2d-medium", policy, transitions=10)
    for transitions in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="transitions must be an int >= 1"):
            make_locomotion_dataset("hopper-medium", policy, transitions=transitions)
    with pytest.raises(FileNotFoundError, match="policy_path"):
        make_locomotion_dataset("hopper-medium", tmp_path / "missing.zip", transitions=10)
    with pytest.raises(ValueError, match="eval_every"):
        train_behaviour_policy(steps=100, eval_every=200, out_dir=tmp_path)
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        train_behaviour_policy(steps=0, out_dir=tmp_path)


def test_data_make_rolls_out_the_checkpoint_nearest_the_level(log_path, tmp_path, capsys):
    from adaptstep.cli import main

    out = tmp_path / "hopper.hdf5"
    main(["data", "make", "hopper-medium", "--transitions", "120", "--policy-dir", str(log_path.parent),
          "--out", str(out), "--no-progress"])
    assert "rolling out" in capsys.readouterr().out
    dataset = read_d4rl(out)
    assert len(dataset) == 120 and dataset.metadata["policy_sha256"]
    assert dataset.metadata["command"].startswith("adaptstep data make hopper-medium")
