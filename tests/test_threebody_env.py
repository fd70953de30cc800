"""Contract tests of adaptstep/ThreeBody-v0: check_env, seeds, actions, reward, termination, bad input."""

import math

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import adaptstep  # noqa: F401  (registers the env ids)
from adaptstep.threebody import YEAR, make_integrator, reference_initial_conditions

ENV_ID = "adaptstep/ThreeBody-v0"
SHORT = {"t_end": 3.0, "interval": 1.0}


@pytest.mark.filterwarnings("ignore:.*symmetric and normalized space")  # the action is log10(η) by design
@pytest.mark.parametrize(
    "kwargs",
    [{"backend": "hermite"}, {"backend": "leapfrog"}, {"backend": "rebound-ias15"}, {"backend": "rebound-bs"},
     {"backend": "hermite-aarseth"}, {"interval_end": "exact"}, {"backend": "rebound-ias15", "interval_end": "exact"},
     {"discrete": True},
     {"initial_conditions": "pythagorean"}],
)
def test_check_env_passes(kwargs):
    env = gym.make(ENV_ID, **SHORT, **kwargs).unwrapped
    check_env(env)


def run(env, actions, seed):
    observation, info = env.reset(seed=seed)
    trace = [observation]
    for action in actions:
        observation, reward, terminated, truncated, info = env.step(action)
        trace.append(np.append(observation, reward))
        if terminated or truncated:
            break
    return np.concatenate(trace), info


def test_identical_seeds_reproduce_episodes_and_differ_across_seeds():
    env = gym.make(ENV_ID, **SHORT)
    actions = [np.array([-2.0], np.float32), np.array([-3.0], np.float32), np.array([-1.5], np.float32)]
    first, info_first = run(env, actions, seed=7)
    second, info_second = run(env, actions, seed=7)
    other, _ = run(env, actions, seed=8)
    np.testing.assert_array_equal(first, second)
    assert info_first["cost"] == info_second["cost"]
    assert not np.array_equal(first, other)


def test_reset_uses_the_reference_distribution_and_reports_its_seed():
    env = gym.make(ENV_ID, **SHORT)
    observation, info = env.reset(seed=3)
    system = reference_initial_conditions(info["system_seed"])
    np.testing.assert_allclose(observation[:9], (system.positions / 10).ravel(), rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(observation[9:18], system.velocities.ravel(), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("interval_end", ["exact", "overshoot"])
def test_episode_reaches_t_end_truncated_with_telescoping_reward(interval_end):
    env = gym.make(ENV_ID, t_end=2.5, interval=1.0, cost_weight=0.5, cost_scale=200.0, target_error=1e-12,
                   interval_end=interval_end)
    _, info = env.reset(seed=1)
    initial_cost = info["cost"]
    total, steps, done = 0.0, 0, False
    while not done:
        _, reward, terminated, truncated, info = env.step(np.array([-2.0], np.float32))
        total, steps, done = total + reward, steps + 1, terminated or truncated
    assert truncated and not terminated and steps == 3  # intervals 1, 1, 0.5
    if interval_end == "exact":
        assert info["time"] == pytest.approx(2.5, rel=1e-12)
    else:
        assert info["time"] >= 2.5  # the last step passes t_end unshortened
    assert info["failure"] is None and info["cost"] > 0 and info["wall_time"] > 0
    expected = -(math.log10(max(info["energy_error"], 1e-12)) + 12) - 0.5 * math.log10(
        (200.0 + info["cost"]) / (200.0 + initial_cost))
    assert total == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(("backend", "log_parameter"), [("hermite", -2.3), ("rebound-ias15", -5.0)])
def test_overshoot_passes_each_interval_end_and_costs_no_more_than_exact(backend, log_parameter):
    """Overshoot: every reached time is >= its interval's end; exact: it equals it. The same initial conditions
    cost no more force evaluations in overshoot mode."""
    interval, t_end = 0.1 * YEAR, 3 * YEAR
    costs = {}
    for interval_end in ("overshoot", "exact"):
        env = gym.make(ENV_ID, backend=backend, interval=interval, t_end=t_end, interval_end=interval_end)
        for seed in (0, 1):
            env.reset(seed=seed)
            done, time = False, 0.0
            while not done:
                end = env.unwrapped.next_interval_end()
                assert end > time
                _, _, terminated, truncated, info = env.step(np.array([log_parameter], np.float32))
                done, time = terminated or truncated, info["time"]
                if interval_end == "exact":
                    assert time == end
                else:
                    assert time >= end and end == min(round(end / interval) * interval, t_end)
            assert not terminated and time >= t_end * (1 - 1e-12)
            costs[interval_end, seed] = info["cost"]
    assert all(costs["overshoot", seed] <= costs["exact", seed] for seed in (0, 1)), costs
    if backend == "rebound-ias15":  # the exact landing restarts IAS15's step at every interval
        assert all(costs["overshoot", seed] < 0.6 * costs["exact", seed] for seed in (0, 1)), costs


def test_exact_mode_steps_equal_an_integrator_chopped_at_the_interval_ends():
    env = gym.make(ENV_ID, **SHORT, interval_end="exact")
    _, info = env.reset(seed=4)
    integrator = make_integrator("hermite", reference_initial_conditions(info["system_seed"]))
    for k, log_eta in enumerate((-2.0, -2.5, -3.0)):
        observation, *_, info = env.step(np.array([log_eta], np.float32))
        integrator.evolve(float(k + 1), 10.0 ** float(np.float32(log_eta)))
        np.testing.assert_array_equal(observation[:9], (integrator.positions / 10).ravel().astype(np.float32))
        assert info["time"] == integrator.time and info["cost"] == integrator.force_evaluations


@pytest.mark.parametrize(("backend", "parameter"), [("rebound-ias15", 1e-7), ("hermite", 0.01)])
def test_whole_episode_action_integrates_to_t_end_in_one_backend_call(backend, parameter):
    env = gym.make(ENV_ID, backend=backend, t_end=2 * YEAR)
    _, info = env.reset(seed=3)
    system = reference_initial_conditions(info["system_seed"])
    action = env.unwrapped.baseline_action(param=parameter, whole_episode=True)
    _, reward, terminated, truncated, info = env.step(action)
    direct = make_integrator(backend, system)
    direct.evolve(2 * YEAR, parameter)
    assert truncated and not terminated and info["time"] == 2 * YEAR
    assert info["cost"] == direct.force_evaluations
    assert info["energy_error"] == abs(direct.energy() - system.energy()) / abs(system.energy())
    with pytest.raises(RuntimeError, match="reset"):
        gym.make(ENV_ID).unwrapped.baseline_action(eta=0.01, whole_episode=True)


def test_smaller_parameter_costs_more_and_is_more_accurate():
    env = gym.make(ENV_ID, **SHORT)
    results = {}
    for log_eta in (-1.0, -3.0):
        _, info = run(env, [np.array([log_eta], np.float32)] * 3, seed=2)
        results[log_eta] = info
    assert results[-3.0]["cost"] > 10 * results[-1.0]["cost"]
    assert results[-3.0]["energy_error"] < results[-1.0]["energy_error"]


def test_blow_up_terminates_cleanly_with_failure():
    env = gym.make(ENV_ID, t_end=50.0, interval=10.0, max_energy_error=1e-14, failure_penalty=7.0)
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(np.array([-1.0], np.float32))
    assert terminated and not truncated
    assert info["failure"] == "energy_error"
    assert math.isfinite(reward) and reward <= -7.0


def test_work_limit_terminates_cleanly():
    env = gym.make(ENV_ID, **SHORT, max_force_evaluations_per_step=5)
    env.reset(seed=0)
    observation, reward, terminated, _, info = env.step(np.array([-4.0], np.float32))
    assert terminated and info["failure"] == "work_limit"
    assert math.isfinite(reward) and np.all(np.isfinite(observation))


def test_discrete_actions_are_the_reference_log_grid():
    env = gym.make(ENV_ID, **SHORT, discrete=True).unwrapped
    assert env.action_space.n == 10
    np.testing.assert_allclose(env.parameter_values, np.logspace(-4, -1, 10))
    assert env.parameter_from_action(np.int64(3)) == pytest.approx(1e-3)
    assert env.baseline_action(eta=1e-3) == 3


def test_out_of_range_continuous_actions_are_clipped():
    env = gym.make(ENV_ID, **SHORT).unwrapped
    assert env.parameter_from_action(np.array([5.0])) == pytest.approx(0.1)
    assert env.parameter_from_action(np.array([-9.0])) == pytest.approx(1e-4)


@pytest.mark.parametrize(
    ("action", "match"),
    [(np.array([np.nan], np.float32), "finite"), (np.array([np.inf], np.float32), "finite"),
     (np.array([-2.0, -2.0], np.float32), "shape"), (np.array([[-2.0]], np.float32), "shape")],
)
def test_bad_continuous_actions_raise(action, match):
    env = gym.make(ENV_ID, **SHORT).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(action)


@pytest.mark.parametrize("action", [10, -1, 2.5])
def test_bad_discrete_actions_raise(action):
    env = gym.make(ENV_ID, **SHORT, discrete=True).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action must be an integer"):
        env.step(action)


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"backend": "rk4"}, "backend"), ({"t_end": 0.0}, "t_end"), ({"t_end": -1.0}, "t_end"),
     ({"interval": float("nan")}, "interval"), ({"initial_conditions": "figure8"}, "initial_conditions"),
     ({"parameter_range": (1e-2, 1e-3)}, "parameter_range"), ({"target_error": 2.0}, "target_error"),
     ({"cost_weight": -1.0}, "cost_weight"), ({"cost_scale": 0.0}, "cost_scale"), ({"n_actions": 1}, "n_actions"),
     ({"max_force_evaluations_per_step": 0}, "max_force_evaluations_per_step"),
     ({"interval_end": "land"}, "interval_end"),
     ({"render_mode": "video"}, "render_mode")],
)
@pytest.mark.filterwarnings("ignore:.*not in the possible render_modes")  # gymnasium's own notice, before ours
def test_bad_env_kwargs_name_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        gym.make(ENV_ID, **kwargs)


def test_baseline_action_validates_name_and_range():
    env = gym.make(ENV_ID, **SHORT).unwrapped
    np.testing.assert_allclose(env.baseline_action(eta=0.01), [-2.0])
    np.testing.assert_allclose(env.baseline_action(param=0.01), [-2.0])
    with pytest.raises(ValueError, match="eta=VALUE"):
        env.baseline_action(epsilon=0.01)
    with pytest.raises(ValueError, match="eta=VALUE"):
        env.baseline_action(eta=0.01, param=0.01)
    with pytest.raises(ValueError, match="parameter_range"):
        env.baseline_action(eta=0.5)
    discrete = gym.make(ENV_ID, **SHORT, discrete=True).unwrapped
    with pytest.raises(ValueError, match="discrete values"):
        discrete.baseline_action(eta=0.03)


def test_every_backend_names_its_parameter():
    names = {backend: gym.make(ENV_ID, backend=backend).unwrapped.parameter_name
             for backend in ("hermite", "hermite-aarseth", "leapfrog", "rebound-ias15")}
    assert names == {"hermite": "eta", "hermite-aarseth": "eta", "leapfrog": "dt", "rebound-ias15": "epsilon"}


def test_rgb_array_render_draws_the_tracks():
    env = gym.make(ENV_ID, **SHORT, render_mode="rgb_array")
    env.reset(seed=0)
    env.step(np.array([-2.0], np.float32))
    image = env.render()
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert image.std() > 0  # not a blank canvas
    no_render = gym.make(ENV_ID, **SHORT)
    no_render.reset(seed=0)
    assert no_render.render() is None
