"""The native ThreeBody-v0 vector env equals Gymnasium's SyncVectorEnv of the single envs, in both autoreset modes."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import adaptstep  # noqa: F401  (registers the env ids)
from adaptstep.threebody.env import ThreeBodyEnv
from adaptstep.threebody.vector import INFO_KEYS, ThreeBodyVectorEnv

ENV_ID = "adaptstep/ThreeBody-v0"
N = 4


def no_nan(value):
    """None for nan: SyncVectorEnv stores a reset env's ``parameter=None`` as nan when the array it joins is float."""
    return None if isinstance(value, float) and np.isnan(value) else value


def assert_infos_match(ours: dict, theirs: dict) -> None:
    """Every value Gymnasium's info holds (under its ``_key`` mask) is ours, with the same mask."""
    for key in INFO_KEYS:
        mask = theirs[f"_{key}"]
        np.testing.assert_array_equal(ours[f"_{key}"], mask, err_msg=key)
        for i in np.flatnonzero(mask):
            np.testing.assert_equal(no_nan(ours[key][i]), no_nan(theirs[key][i]), err_msg=f"{key}[{i}]")


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
@pytest.mark.parametrize("kwargs", [
    {"backend": "hermite"},
    {"backend": "hermite-aarseth", "interval_end": "exact", "max_force_evaluations_per_step": 400},
    {"backend": "leapfrog", "max_energy_error": 1e-6},
    {"backend": "hermite", "discrete": True, "initial_conditions": "pythagorean", "max_energy_error": 1e-7},
])
def test_vector_env_equals_the_sync_vector_env_of_single_envs(mode, kwargs):
    kwargs = {"t_end": 4.0, "interval": 1.0, **kwargs}
    ours = gym.make_vec(ENV_ID, num_envs=N, vectorization_mode="vector_entry_point", autoreset_mode=mode, **kwargs)
    theirs = SyncVectorEnv([lambda: ThreeBodyEnv(**kwargs)] * N, autoreset_mode=mode)
    assert ours.metadata["autoreset_mode"] == mode
    assert ours.observation_space == theirs.observation_space and ours.action_space == theirs.action_space
    observation, info = ours.reset(seed=5)
    expected, expected_info = theirs.reset(seed=5)
    np.testing.assert_array_equal(observation, expected)
    assert_infos_match(info, expected_info)
    ours.action_space.seed(0)
    ends = 0
    for _ in range(30):
        action = ours.action_space.sample()
        observation, reward, terminated, truncated, info = ours.step(action)
        expected, expected_reward, expected_terminated, expected_truncated, expected_info = theirs.step(action)
        np.testing.assert_array_equal(observation, expected)
        np.testing.assert_array_equal(reward, expected_reward)
        np.testing.assert_array_equal(terminated, expected_terminated)
        np.testing.assert_array_equal(truncated, expected_truncated)
        assert_infos_match(info, expected_info)
        assert ("final_obs" in info) == ("final_obs" in expected_info)
        if "final_obs" in info:
            np.testing.assert_array_equal(info["_final_obs"], expected_info["_final_obs"])
            for i in np.flatnonzero(expected_info["_final_obs"]):
                np.testing.assert_array_equal(info["final_obs"][i], expected_info["final_obs"][i])
            assert_infos_match(info["final_info"], expected_info["final_info"])
        ends += int(np.sum(terminated | truncated))
    assert ends >= N  # every system ended at least once on average, so autoresets were compared


def test_vector_env_reset_mask_resets_only_the_masked_systems():
    env = ThreeBodyVectorEnv(num_envs=3, t_end=4.0, interval=1.0)
    first, _ = env.reset(seed=1)
    env.step(np.full((3, 1), -2.0, np.float32))
    observation, info = env.reset(seed=1, options={"reset_mask": np.array([False, True, False])})
    np.testing.assert_array_equal(observation[1], first[1])
    assert not np.array_equal(observation[0], first[0]) and list(info["_cost"]) == [False, True, False]


def test_vector_env_rejects_bad_input_with_one_clear_line():
    with pytest.raises(ValueError, match="backend must be one of"):
        ThreeBodyVectorEnv(num_envs=2, backend="rebound-ias15")
    with pytest.raises(ValueError, match="num_envs"):
        ThreeBodyVectorEnv(num_envs=0)
    with pytest.raises(ValueError, match="autoreset_mode must be one of"):
        ThreeBodyVectorEnv(num_envs=2, autoreset_mode="Disabled")
    env = ThreeBodyVectorEnv(num_envs=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="actions must be finite"):
        env.step(np.array([[np.nan], [-2.0]]))
    with pytest.raises(ValueError, match="actions must have shape"):
        env.step(np.zeros((3, 1)))


def test_single_env_keeps_its_wall_time_wrapper_and_vector_entry_point():
    env = gym.make(ENV_ID, t_end=2.0, interval=1.0)
    _, info = env.reset(seed=0)
    assert info["wall_time"] == 0.0
    assert gym.spec(ENV_ID).vector_entry_point is not None
