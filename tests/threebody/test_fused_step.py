"""The fused Numba step of ThreeBody-v0 equals its Python path (ThreeBodyProcess) bit for bit."""

import math

import gymnasium as gym
import numpy as np
import pytest

import adaptstep  # noqa: F401  (registers the env ids)

ENV_ID = "adaptstep/ThreeBody-v0"
PAIRS = (np.array([0, 0, 1]), np.array([1, 2, 2]))


def numpy_observation(env) -> np.ndarray:
    """The observation as the env computed it with NumPy before the fused step (the reference)."""
    process = env.process
    positions = process.positions
    separations = positions[PAIRS[0]] - positions[PAIRS[1]]
    closest = math.sqrt(float(np.min(np.einsum("ij,ij->i", separations, separations))))
    error = process.energy_error if math.isfinite(process.energy_error) else 1.0
    observation = np.empty(22, dtype=np.float32)
    observation[:9] = positions.ravel() / 10.0
    observation[9:18] = process.velocities.ravel()
    observation[18] = math.log10(max(error, 1e-16)) / 10.0
    observation[19] = env._last_action
    observation[20] = math.log10(max(closest, 1e-16)) if math.isfinite(closest) else 0.0
    observation[21] = process.time / env.t_end
    if not np.all(np.abs(observation) <= 1e6):
        observation = np.clip(np.nan_to_num(observation, nan=0.0), -1e6, 1e6)
    return observation


def episode(env, seed: int, actions: np.ndarray) -> list:
    """Every output of an episode: observations, rewards, terminated, truncated and infos."""
    observation, info = env.reset(seed=seed)
    rows = [(observation, info)]
    for action in actions:
        observation, reward, terminated, truncated, info = env.step(action)
        np.testing.assert_array_equal(observation, numpy_observation(env))
        rows.append((observation, reward, terminated, truncated, info))
        if terminated or truncated:
            break
    return rows


@pytest.mark.parametrize("backend", ["hermite", "hermite-aarseth", "leapfrog"])
@pytest.mark.parametrize("interval_end", ["overshoot", "exact"])
@pytest.mark.parametrize("limits", [{}, {"max_force_evaluations_per_step": 300}, {"max_energy_error": 1e-10},
                                    {"discrete": True, "initial_conditions": "pythagorean"}])
def test_fused_step_equals_the_python_path(backend, interval_end, limits):
    kwargs = {"backend": backend, "interval_end": interval_end, "t_end": 12.0, "interval": 1.0, **limits}
    fused = gym.make(ENV_ID, **kwargs).unwrapped
    python = gym.make(ENV_ID, **kwargs).unwrapped
    assert fused.settings is not None
    python.settings = None  # the ThreeBodyProcess path that the REBOUND backends take
    rng = np.random.default_rng(1)
    failures = set()
    for seed in range(3):
        if limits.get("discrete"):
            actions = rng.integers(0, python.action_space.n, 15)
        else:
            actions = rng.uniform(*python.log_range, (15, 1)).astype(np.float32)
        ours, theirs = episode(fused, seed, actions), episode(python, seed, actions)
        assert len(ours) == len(theirs)
        for mine, reference in zip(ours, theirs, strict=True):
            np.testing.assert_array_equal(mine[0], reference[0])
            assert mine[1:] == reference[1:]
            assert all(type(a) is type(b) for a, b in zip(mine[1:], reference[1:], strict=True))
        failures.add(ours[-1][-1]["failure"])
    if not limits.get("discrete") and limits:
        assert failures - {None}, "the limits were meant to make some episodes fail"


@pytest.mark.parametrize("backend", ["hermite", "leapfrog"])
def test_fused_step_of_a_blown_up_state_fails_as_the_python_path(backend):
    outputs = []
    for fused in (True, False):
        env = gym.make(ENV_ID, backend=backend, t_end=3.0, interval=1.0).unwrapped
        if not fused:
            env.settings = None
        env.reset(seed=0)
        env.process.integrator._x[0, 0] = np.nan  # a blow-up the integrator cannot recover from
        observation, *rest = env.step(np.array([-2.0], np.float32))
        np.testing.assert_array_equal(observation, numpy_observation(env))
        assert np.all(np.isfinite(observation))
        outputs.append((observation, *rest))
    (ours, *our_rest), (theirs, *their_rest) = outputs
    np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_equal(our_rest, their_rest)  # nan energy errors equal
    reward, terminated, truncated, info = our_rest
    assert terminated and not truncated and info["failure"] == "non_finite" and reward < 0
