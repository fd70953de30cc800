import importlib.util

import gymnasium as gym
import gym_pusht  # noqa: F401
import numpy as np
import pandas as pd
import pytest
import torch

from adaptstep.policies.demos import make_demos
from adaptstep.policies.diffusion_policy import DiffusionPolicy, DiffusionPolicyConfig, train_diffusion_policy
from adaptstep.policies.pusht_expert import PushTExpert
from adaptstep.policies.task import ROBOT_TASKS, make_expert, make_robot_env

SIZE = 32


@pytest.mark.parametrize("seed", [0, 4, 7])
def test_expert_succeeds_on_fixed_seeds(seed):
    env = make_robot_env("pusht", image_size=SIZE)
    expert = make_expert("pusht")
    assert isinstance(expert, PushTExpert)
    _, info = env.reset(seed=seed)
    assert info["coverage"] < 0.95
    for step in range(ROBOT_TASKS["pusht"].episode_steps):
        _, _, terminated, truncated, info = env.step(expert(env))
        if terminated or truncated:
            break
    env.close()
    assert terminated and info["success"] and info["coverage"] > 0.95 and info["is_success"]


def test_wrapper_matches_gym_pusht():
    ours = make_robot_env("pusht", image_size=SIZE)
    pixels = gym.make("gym_pusht/PushT-v0", obs_type="pixels_agent_pos", render_mode="rgb_array",
                      observation_width=SIZE, observation_height=SIZE)
    state = gym.make("gym_pusht/PushT-v0", obs_type="environment_state_agent_pos")
    observation, info = ours.reset(seed=3)
    theirs, _ = pixels.reset(seed=3)
    keypoints, _ = state.reset(seed=3)
    assert ours.observation_space["image"].shape == (SIZE, SIZE, 3) and observation["proprio"].shape == (18,)
    assert ours.action_space == pixels.action_space
    rng = np.random.default_rng(0)
    for _ in range(20):
        np.testing.assert_array_equal(observation["image"], theirs["pixels"])
        np.testing.assert_allclose(observation["proprio"][:2], theirs["agent_pos"], rtol=1e-6)
        np.testing.assert_allclose(observation["proprio"][2:], keypoints["environment_state"], rtol=1e-5)
        assert ours.observation_space.contains(observation)
        action = rng.uniform(0, 512, 2).astype(np.float32)
        observation, reward, terminated, truncated, info = ours.step(action)
        theirs, their_reward, their_terminated, _, their_info = pixels.step(action)
        keypoints, *_ = state.step(action)
        assert reward == their_reward and terminated == their_terminated
        assert info["coverage"] == their_info["coverage"] and info["success"] == their_info["is_success"]
        assert info["distance"] == pytest.approx(1 - info["coverage"])
    for env in (ours, pixels, state):
        env.close()


def test_image_variant_sees_the_agent_alone():
    state, image = make_robot_env("pusht", image_size=SIZE), make_robot_env("pusht-image", image_size=SIZE)
    full, _ = state.reset(seed=5)
    agent, _ = image.reset(seed=5)
    assert image.observation_space["proprio"].shape == (2,) and image.observation_space.contains(agent)
    np.testing.assert_array_equal(agent["proprio"], full["proprio"][:2])
    np.testing.assert_array_equal(agent["image"], full["image"])
    demos = make_demos("pusht-image", episodes=1, image_size=SIZE, seed=4)
    assert demos.proprio.shape[1] == 2 and demos.success.all()
    for env in (state, image):
        env.close()


@pytest.mark.skipif(importlib.util.find_spec("metaworld") is not None, reason="metaworld is installed here")
def test_metaworld_tasks_say_where_metaworld_lives():
    with pytest.raises(ImportError, match="make .venv-metaworld"):
        make_robot_env("metaworld-push")


def test_bad_task_and_image_size_are_named():
    with pytest.raises(ValueError, match="task must be one of .*'pusht'"):
        make_robot_env("push-t")
    with pytest.raises(ValueError, match=r"image_size must be an int in \[32, 256\], got 8"):
        make_robot_env("pusht", image_size=8)
    with pytest.raises(ValueError, match="pusht takes neither"):
        make_demos("pusht", episodes=1, image_size=SIZE, random_start=0.5)


def test_pusht_demos_and_state_based_diffusion_policy():
    demos = make_demos("pusht", episodes=1, image_size=SIZE, seed=4)
    assert demos.success.all() and demos.metadata["final_coverage"][0] > 0.95
    assert demos.images.shape[1:] == (SIZE, SIZE, 3) and demos.proprio.shape[1] == 18
    assert demos.actions.min() >= 0 and demos.actions.max() <= 512
    policy = train_diffusion_policy(demos, steps=2, batch_size=4, images=False, down_dims=(16, 32),
                                    step_embed_dim=16, action_steps=8, device="cpu")
    assert policy.encoder is None and policy.config.images is False
    chunks, nfe = policy.predict(None, demos.proprio[None, :2], steps=3, seed=0)
    assert chunks.shape == (1, 16, 2) and nfe == 3 and np.isfinite(chunks).all()
    with pytest.raises(ValueError, match="proprio must have shape"):
        policy.predict(None, demos.proprio[None, :1])
    with pytest.raises(ValueError, match="images must be True or False"):
        DiffusionPolicyConfig(proprio_dim=18, action_dim=2, images="no")
    assert sum(p.numel() for p in DiffusionPolicy(DiffusionPolicyConfig(18, 2, images=False)).parameters()) < \
        sum(p.numel() for p in DiffusionPolicy(DiffusionPolicyConfig(18, 2)).parameters())


def test_dual_system_env_and_bench_on_pusht(tmp_path, tiny_pipeline):
    from adaptstep.cli import main
    from adaptstep.policies.demos import save_demos

    demos = save_demos(make_demos("pusht", episodes=1, image_size=SIZE, seed=4), tmp_path / "demos.hdf5")
    text = tiny_pipeline("pusht", demos, episodes=2)
    assert "final coverage [95% CI]" in text and "Chi et al. score [95% CI]" in text
    rows = pd.read_csv(tmp_path / "p.csv")
    assert (rows["score"] >= np.minimum(rows["coverage"] / 0.95, 1) - 1e-12).all() and (rows["score"] <= 1).all()
    with pytest.raises(SystemExit, match="--dual-system is required"):
        main(["bench", "robot", "--task", "pusht", "--agent", "x.zip", "--out", str(tmp_path / "BENCHMARKS.md")])
