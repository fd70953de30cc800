"""DiffusionSampler-v0's vector env (one denoiser call per step for N episodes) equals N single envs."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector import AutoresetMode, SyncVectorEnv

import adaptstep  # noqa: F401  (registers the env ids)
from adaptstep.diffusion.env import DiffusionSamplerEnv
from adaptstep.diffusion.vector import DiffusionSamplerVectorEnv, PrefetchedDenoiser

ENV_ID = "adaptstep/DiffusionSampler-v0"
N = 3


@pytest.mark.parametrize("mode", [AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP])
@pytest.mark.parametrize("kwargs", [{"model": "gmm-2d", "batch_size": 32, "nfe": 4},
                                    {"model": "gmm-2d", "batch_size": 16, "nfe": 5, "solver": "unipc-bh2",
                                     "choose_order": True}])
def test_vector_env_equals_the_sync_vector_env_of_single_envs(mode, kwargs):
    ours = gym.make_vec(ENV_ID, num_envs=N, vectorization_mode="vector_entry_point", autoreset_mode=mode, **kwargs)
    theirs = SyncVectorEnv([lambda: DiffusionSamplerEnv(**kwargs)] * N, autoreset_mode=mode)
    assert isinstance(ours, DiffusionSamplerVectorEnv)
    observation, _ = ours.reset(seed=4)
    expected, _ = theirs.reset(seed=4)
    np.testing.assert_array_equal(observation, expected)
    ours.action_space.seed(1)
    ends = 0
    for step in range(3 * kwargs["nfe"]):
        action = ours.action_space.sample()
        observation, reward, terminated, truncated, info = ours.step(action)
        if step == 0:  # every solver took its x̂0 from the shared call
            for env in ours.envs:
                proxy = env.unwrapped.process.solver.denoiser
                assert isinstance(proxy, PrefetchedDenoiser) and proxy._prefetched is None
        expected, expected_reward, expected_terminated, expected_truncated, expected_info = theirs.step(action)
        np.testing.assert_allclose(observation, expected, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(reward, expected_reward, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(terminated, expected_terminated)
        np.testing.assert_array_equal(truncated, expected_truncated)
        np.testing.assert_array_equal(info["cost"], expected_info["cost"])
        ends += int(terminated.sum())
    assert ends >= N


def test_prefetched_denoiser_serves_its_tensor_only_once_and_defers_otherwise():
    class Counting:
        calls = 0

        def predict_x0(self, x, t):
            Counting.calls += 1
            return x * 0

    proxy = PrefetchedDenoiser(Counting())
    x, other = np.ones(2), np.ones(2)
    proxy.prefetch(x, "x0")
    assert proxy.predict_x0(x, 0.5) == "x0" and Counting.calls == 0
    proxy.predict_x0(x, 0.5)  # already served: the real denoiser
    proxy.prefetch(x, "x0")
    proxy.predict_x0(other, 0.5)  # another tensor: the real denoiser
    assert Counting.calls == 2


def test_vector_env_rejects_a_bad_num_envs():
    with pytest.raises(ValueError, match="num_envs must be an int >= 1"):
        DiffusionSamplerVectorEnv(num_envs=0, model="gmm-2d")
