"""`adaptstep train` with n_envs on an env id with a native vector env: SB3 steps it through GymnasiumVecEnv."""

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecMonitor

from adaptstep.agents.training import train, training_vec_env
from adaptstep.agents.vector import GymnasiumVecEnv
from adaptstep.cli import main

ENV_ID = "adaptstep/ThreeBody-v0"
PPO_TINY = {"n_timesteps": 128, "policy": "MlpPolicy", "n_envs": 4, "n_steps": 16, "batch_size": 32, "n_epochs": 2,
            "env_kwargs": {"t_end": 3.0, "interval": 1.0}}


def test_train_with_n_envs_4_steps_the_native_vector_env_and_saves(tmp_path):
    config = tmp_path / "ppo.yml"
    config.write_text(yaml.safe_dump({ENV_ID: PPO_TINY}))
    main(["train", ENV_ID, "--algo", "ppo", "--config", str(config), "--out", str(tmp_path / "run"), "--no-progress",
          "--seed", "3"])
    model = PPO.load(tmp_path / "run" / "model.zip")
    assert model.num_timesteps >= 128 and model.n_envs == 4
    assert yaml.safe_load((tmp_path / "run" / "run.yaml").read_text())["complete"] is True


def test_native_training_equals_dummy_vec_env_training(tmp_path):
    """Same seeds: the native vector env gives PPO the transitions DummyVecEnv gives it, so the same weights."""
    weights = {}
    for kind in ("native", "dummy"):
        config = tmp_path / f"{kind}.yml"
        config.write_text(yaml.safe_dump({ENV_ID: {**PPO_TINY, "vec_env": kind}}))
        path = train(ENV_ID, "ppo", tmp_path / kind, config=config, seed=5, progress_bar=False)
        weights[kind] = PPO.load(path).policy.state_dict()
    for name, value in weights["native"].items():
        torch.testing.assert_close(value, weights["dummy"][name], rtol=0, atol=0, msg=name)


def test_training_vec_env_picks_native_and_falls_back_to_dummy():
    native = training_vec_env(ENV_ID, 2, 0, {"t_end": 2.0, "interval": 1.0}, "native")
    assert isinstance(native, VecMonitor) and isinstance(native.venv, GymnasiumVecEnv)
    assert native.action_space == gym.spaces.Box(-1, 1, (1,), np.float32)
    fallback = training_vec_env(ENV_ID, 2, 0, {"backend": "rebound-ias15"}, "native")  # not batched natively
    assert isinstance(fallback, DummyVecEnv)


def test_gymnasium_vec_env_reports_terminal_observations_as_dummy_vec_env():
    env = gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="vector_entry_point", autoreset_mode="SameStep",
                       t_end=2.0, interval=1.0)
    vec_env = GymnasiumVecEnv(env)
    vec_env.seed(0)
    vec_env.reset()
    for _ in range(2):
        vec_env.step_async(np.zeros((2, 1), np.float32))
        observations, rewards, dones, infos = vec_env.step_wait()
    assert dones.all() and all(info["TimeLimit.truncated"] for info in infos)
    assert all(info["terminal_observation"].shape == (22,) for info in infos)
    assert not np.array_equal(observations[0], infos[0]["terminal_observation"])  # already the next episode's
    with pytest.raises(ValueError, match="autoreset_mode='SameStep'"):
        GymnasiumVecEnv(gym.make_vec(ENV_ID, num_envs=2, vectorization_mode="vector_entry_point"))
