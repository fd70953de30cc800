"""Contract tests of adaptstep/DiffusionSampler-v0 and the hand-made schedule controllers."""

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import adaptstep  # noqa: F401  (registers the env ids)
from adaptstep.agents import parse_controller
from adaptstep.diffusion.process import load_sampler_model, noise_and_reference
from adaptstep.evaluation import evaluate, play_episode, summarize
from adaptstep.nn.solvers import sample
from adaptstep.nn.timesteps import make_timesteps

ENV_ID = "adaptstep/DiffusionSampler-v0"
SMALL = {"batch_size": 16, "reference_steps": 32}


@pytest.mark.parametrize("kwargs", [{}, {"choose_order": True}, {"model": "gmm-64d", "nfe": 4}, {"noise_pool": 3}])
def test_check_env_passes(kwargs):
    check_env(gym.make(ENV_ID, **{**SMALL, **kwargs}).unwrapped)


@pytest.mark.parametrize(("schedule", "solver", "options"), [
    ("logsnr_uniform", "dpmpp2m", ""), ("time_uniform", "ddim", ""), ("edm", "dpmpp3m", ""),
    ("time_quadratic", "dpmpp2m", ""), ("edm", "dpmpp3m", ",lower_order_final=below10"),
    ("time_uniform", "dpmpp3m", ",lower_order_final=never,third_order=dpmsolver"), ("logsnr_uniform", "unipc3-bh2", ""),
    ("time_quadratic", "unipc2-bh1", ",lower_order_final=below15")])
@pytest.mark.parametrize("nfe", [5, 12])
def test_schedule_controllers_reproduce_the_solver_run(schedule, solver, options, nfe):
    """Driving the env with a schedule equals sampling with it directly, from the same noise, with the same
    final-order rule (the env's default "always" unless the spec names one) and 3M variant."""
    controller = parse_controller(f"schedule:{schedule},solver={solver}{options}")
    env = gym.make(ENV_ID, nfe=nfe, **SMALL, **controller.env_overrides)
    row = play_episode(env, controller, seed=4)
    model, noise_schedule = load_sampler_model("gmm-2d")
    x_T, reference = noise_and_reference("gmm-2d", 16, env.unwrapped._noise_seed, 32)
    settings = {"lower_order_final": "always", **{key: value for key, value in controller.env_overrides.items()
                                                 if key in ("lower_order_final", "third_order")}}
    x, used = sample(model, noise_schedule, x_T, make_timesteps(schedule, noise_schedule, nfe), solver=solver, **settings)
    assert row["cost"] == used == nfe and row["steps"] == nfe
    assert row["error"] == pytest.approx(float((x - reference).pow(2).mean().sqrt()), rel=1e-6)
    assert row["return"] == pytest.approx(-math.log10(row["error"]))
    assert math.sqrt(np.mean(np.square(row["sample_errors"]))) == pytest.approx(row["error"], rel=1e-9)
    assert 0 <= row["mode_switch_rate"] <= 1


def test_the_pooled_statistic_and_the_mode_switch_rate_on_a_constructed_case():
    """Four samples near two components, one of which ends in the other component: hand-computed values."""
    from adaptstep.diffusion.metrics import mode_switches, pooled_rmse, sample_errors

    centres = np.array([[0.0, 0.0], [10.0, 0.0]])
    reference = np.array([[0.0, 0.0], [0.0, 1.0], [10.0, 0.0], [10.0, 1.0]])
    x = reference + np.array([[0.1, 0.0], [0.0, 0.0], [0.0, 0.1], [-9.0, 0.0]])  # the last sample switches
    errors = sample_errors(x, reference)
    np.testing.assert_allclose(errors, [0.1 / math.sqrt(2), 0.0, 0.1 / math.sqrt(2), 9 / math.sqrt(2)])
    assert mode_switches(x, reference, centres).tolist() == [False, False, False, True]
    rmse, low, high = pooled_rmse(errors)
    assert rmse == pytest.approx(math.sqrt((0.005 + 0.005 + 40.5) / 4))  # √(mean e²) = the RMSE over all entries
    assert rmse == pytest.approx(float(np.sqrt(np.mean((x - reference) ** 2))))
    assert 0 < low < rmse < high <= 9 / math.sqrt(2) + 1e-12  # a bootstrap over samples: a resample may miss it


def test_the_final_info_pools_samples_and_counts_mode_switches():
    """One sample moved onto the opposite component of the ring: a switch rate of 1/16, its error in the list."""
    env = gym.make(ENV_ID, nfe=3, **SMALL).unwrapped
    env.reset(seed=5)
    *_, info = env.step(np.array([1.0], np.float32))
    assert len(info["sample_errors"]) == 16 and 0 <= info["mode_switch_rate"] <= 1
    process = env.process
    centres = process.schedule.alpha(torch.tensor(process.t_end, dtype=torch.float64)) * process.denoiser.means
    nearest = int(torch.cdist(process.reference[:1], centres).argmin())
    process.x = process.reference.clone()
    process.x[0] = centres[(nearest + 4) % 8]  # 8 modes on a ring: the opposite one
    info, _ = env._score()
    assert info["mode_switch_rate"] == 1 / 16
    assert info["sample_errors"][0] == pytest.approx(float((centres[(nearest + 4) % 8] - process.reference[0])
                                                           .pow(2).mean().sqrt()))
    assert info["sample_errors"][1:] == [0.0] * 15
    assert "mode_switch_rate" not in gym.make(ENV_ID, model="digits", **SMALL).unwrapped.metric_names


def test_the_budget_is_never_exceeded_and_the_last_step_lands_on_t_min():
    env = gym.make(ENV_ID, nfe=5, **SMALL)
    env.reset(seed=0)
    steps, done = 0, False
    while not done:
        _, reward, done, truncated, info = env.step(np.array([0.0], np.float32))  # clipped to min_fraction
        steps += 1
        assert not truncated
    schedule = env.unwrapped.process.schedule
    assert steps == info["cost"] == 5 and info["times"][-1] == schedule.t_min and info["error"] > 0
    assert np.all(np.diff(info["times"]) < 0)


def test_a_full_jump_ends_after_one_nfe():
    env = gym.make(ENV_ID, nfe=10, **SMALL)
    env.reset(seed=0)
    _, reward, terminated, _, info = env.step(np.array([1.0], np.float32))
    assert terminated and info["cost"] == 1 and math.isfinite(reward) and info["orders"] == [1]


def test_chosen_orders_are_decoded_and_capped_by_the_history():
    env = gym.make(ENV_ID, nfe=6, choose_order=True, **SMALL)
    env.reset(seed=1)
    for u in (0.9, 0.9, 0.9, 0.1, 0.5):
        *_, info = env.step(np.array([0.2, u], np.float32))
    assert info["orders"] == [1, 2, 3, 1, 2]


def test_more_nfe_means_less_error_on_the_same_noise():
    table = evaluate(ENV_ID, ["schedule:logsnr_uniform,solver=dpmpp2m@nfe=5",
                              "schedule:logsnr_uniform,solver=dpmpp2m@nfe=20"], episodes=2, seed=7,
                     env_kwargs=SMALL, progress=False)
    errors = table.groupby("controller")["error"].median()
    assert errors["schedule:logsnr_uniform,solver=dpmpp2m@nfe=20"] < errors["schedule:logsnr_uniform,solver=dpmpp2m@nfe=5"] / 4
    assert set(table["cost"]) == {5, 20}


def test_seeds_reproduce_episodes_and_the_noise_pool_repeats_noise():
    env = gym.make(ENV_ID, nfe=4, **SMALL)
    rows = [play_episode(env, parse_controller("random"), seed=s) for s in (9, 9, 10)]
    assert rows[0]["error"] == rows[1]["error"] != rows[2]["error"]
    pooled = gym.make(ENV_ID, nfe=4, noise_pool=2, **SMALL)
    seeds = {pooled.reset(seed=s)[1]["noise_seed"] for s in range(20)}
    assert seeds <= {0, 1}


def test_the_correction_signal_is_the_gap_between_the_order_k_and_the_ddim_update():
    env = gym.make(ENV_ID, nfe=6, choose_order=True, **SMALL).unwrapped
    env.reset(seed=2)
    observation, *_ = env.step(np.array([0.3, 0.9], np.float32))  # warm-up: order 1, so no correction
    assert env.process.orders == [1] and env.process.correction == 0 and observation[6] == -8
    process = env.process
    x, t = process.x.clone(), process.t
    observation, *_ = env.step(np.array([0.3, 0.5], np.float32))
    ddim_next = process.solver.__class__(process.denoiser, process.schedule).step(x, t, process.t, 1)
    assert process.orders == [1, 2] and process.correction > 0
    assert process.correction == pytest.approx(float((process.x - ddim_next).pow(2).mean().sqrt()), rel=1e-9)
    assert observation[6] == pytest.approx(math.log10(process.correction), rel=1e-5)


def test_a_reward_baseline_scores_the_error_relative_to_a_hand_schedule_on_the_same_noise():
    controller = parse_controller("schedule:edm,solver=dpmpp2m")
    env = gym.make(ENV_ID, nfe=5, reward_baseline="edm", **SMALL)
    row = play_episode(env, controller, seed=3)
    assert row["return"] == pytest.approx(0.0, abs=1e-6)  # the controller is the baseline (up to λ round trips)
    plain = play_episode(gym.make(ENV_ID, nfe=5, reward_baseline="time_uniform", **SMALL), controller, seed=3)
    _, info = gym.make(ENV_ID, nfe=5, **SMALL).reset(seed=3)
    from adaptstep.diffusion.process import baseline_error

    expected = baseline_error("gmm-2d", 16, info["noise_seed"], 32, "time_uniform", 5, 2)
    assert plain["error"] == row["error"]
    assert plain["return"] == pytest.approx(-math.log10(row["error"] / expected))


def test_the_mse_reward_on_a_constructed_case_with_one_switched_sample():
    """Hand-computed: four samples, the last switched (e = 9/√2); the reward is (MSE_baseline − mean e²) / scale."""
    from adaptstep.diffusion.env import mse_reward

    errors = [0.1 / math.sqrt(2), 0.0, 0.1 / math.sqrt(2), 9 / math.sqrt(2)]
    mse = (0.005 + 0.0 + 0.005 + 40.5) / 4  # = 10.1275, the pooled MSE of the four samples
    assert mse_reward(errors, 0.0, 1.0, 100.0) == pytest.approx(-10.1275)
    assert mse_reward(errors, 12.0, 2.0, 100.0) == pytest.approx((12.0 - mse) / 2.0)
    unswitched = mse_reward(errors[:3] + [0.1 / math.sqrt(2)], 0.0, 1.0, 100.0)
    assert unswitched == pytest.approx(-0.015 / 4)
    assert unswitched - mse_reward(errors, 0.0, 1.0, 100.0) == pytest.approx((40.5 - 0.005) / 4)  # the switch's cost
    assert mse_reward(errors, 0.0, 1.0, 10.0) == pytest.approx(-10 * (1 + math.log(1.01275)))  # below −floor: log
    assert mse_reward(errors, 0.0, 1.0, 10.1275) == pytest.approx(-10.1275)  # continuous at −floor
    assert mse_reward([math.inf, math.nan], 0.0, 1.0, 10.0) == pytest.approx(-10 * (1 + math.log(1e24 / 10)))


def test_the_mse_reward_is_linear_in_the_pooled_squared_error_and_relative_to_the_baseline():
    """In the env: the reward equals (baseline error² − error²) / scale, the default scale being the baseline's mean
    MSE over noise seeds 0…15; the baseline schedule itself scores 0; a switched sample costs its e² / (batch·scale)."""
    from adaptstep.diffusion.env import default_mse_scale
    from adaptstep.diffusion.process import baseline_error

    controller = parse_controller("schedule:time_uniform,solver=dpmpp2m")
    env = gym.make(ENV_ID, nfe=5, reward="mse", reward_baseline="time_uniform", **SMALL)
    assert play_episode(env, controller, seed=3)["return"] == pytest.approx(0.0, abs=1e-6)  # up to λ round trips
    scale = np.mean([baseline_error("gmm-2d", 16, seed, 32, "time_uniform", 5, 2, "exact", "always") ** 2
                     for seed in range(16)])
    assert default_mse_scale("gmm-2d", 16, 32, "time_uniform", 5, 2, "exact", "always", "dpmpp") == pytest.approx(scale)
    row = play_episode(env, parse_controller("schedule:edm,solver=dpmpp2m"), seed=3)
    base = baseline_error("gmm-2d", 16, row["noise_seed"], 32, "time_uniform", 5, 2, "exact", "always")
    assert row["return"] == pytest.approx((base**2 - row["error"] ** 2) / scale, rel=1e-9)
    assert row["return"] == pytest.approx((base**2 - np.mean(np.square(row["sample_errors"]))) / scale, rel=1e-9)

    unwrapped = gym.make(ENV_ID, nfe=3, reward="mse", reward_scale=0.5, **SMALL).unwrapped
    unwrapped.reset(seed=5)
    unwrapped.step(np.array([1.0], np.float32))
    process = unwrapped.process
    process.x = process.reference.clone()
    assert unwrapped._score()[1] == 0.0
    process.x[0] += 3.0  # e_0 = 3 on every dimension: MSE 9/16
    assert unwrapped._score()[1] == pytest.approx(-(9 / 16) / 0.5)
    process.x[1] += 100.0  # a diverged sample: below −reward_floor (10) the reward is compressed logarithmically
    raw = -(9 + 100**2) / 16 / 0.5
    assert unwrapped._score()[1] == pytest.approx(-10 * (1 + math.log(-raw / 10)))


@pytest.mark.parametrize(("kwargs", "match"), [({"reward": "rmse"}, "reward must be one of"),
                                               ({"reward": "mse"}, "needs reward_scale or reward_baseline"),
                                               ({"reward": "mse", "reward_scale": 0.0}, "reward_scale"),
                                               ({"reward_floor": -1.0}, "reward_floor"),
                                               ({"reward_scale": 1.0}, "reward='mse' only")])
def test_bad_reward_options_name_the_parameter(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make(ENV_ID, **kwargs)


def test_a_trained_denoiser_file_is_a_model(tmp_path):
    from adaptstep.diffusion.training import train_denoiser

    path = train_denoiser("two-moons", tmp_path, steps=20, batch_size=32, device="cpu", progress=False)
    env = gym.make(ENV_ID, model=str(path), nfe=3, **SMALL)
    row = play_episode(env, parse_controller("schedule:logsnr_uniform,solver=dpmpp2m"), seed=0)
    assert row["cost"] == 3 and math.isfinite(row["error"])


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"model": "gmm-3d"}, "model"), ({"nfe": 0}, "nfe"), ({"batch_size": 0}, "batch_size"), ({"order": 4}, "order"),
     ({"min_fraction": 0.0}, "min_fraction"), ({"noise_pool": 0}, "noise_pool"),
     ({"third_order": "fast"}, "third_order"), ({"reference_steps": 0}, "reference_steps"),
     ({"solver": "unipc"}, "solver"), ({"lower_order_final": True}, "lower_order_final"),
     ({"reward_baseline": "cosine"}, "reward_baseline"),
     ({"render_mode": "rgb_array"}, "render_mode")],
)
@pytest.mark.filterwarnings("ignore:.*not in the possible render_modes")  # gymnasium's own notice, before ours
def test_bad_env_kwargs_name_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        gym.make(ENV_ID, **kwargs)


@pytest.mark.parametrize(("action", "match"), [(np.array([np.nan], np.float32), "finite"),
                                               (np.array([0.5, 0.5], np.float32), "shape")])
def test_bad_actions_raise(action, match):
    env = gym.make(ENV_ID, **SMALL).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match=match):
        env.step(action)


def test_a_schedule_controller_refuses_an_env_of_another_order():
    env = gym.make(ENV_ID, order=2, **SMALL)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="order=3"):
        parse_controller("schedule:edm,solver=dpmpp3m").reset(env)


@pytest.mark.parametrize(("spec", "match"), [("schedule:cosine", "name must be one of"),
                                             ("schedule:edm,solver=heun", "solver must be one of"),
                                             ("schedule:edm,lower_order_final=sometimes", "lower_order_final"),
                                             ("schedule:edm,third_order=taylor", "third_order"),
                                             ("diffusers:ddim", "kind must be one of"),
                                             ("diffusers:unipc,solver_type=bh3", "solver_type"),
                                             ("diffusers:unipc,disable_corrector=[0]", "unknown")])
def test_bad_schedule_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_controller(spec)


def test_the_shipped_digits_model_and_distribution_metrics_reach_the_harness_table():
    check_env(gym.make(ENV_ID, model="digits", nfe=3, distribution_metrics=True, **SMALL).unwrapped)
    table = evaluate(ENV_ID, ["schedule:logsnr_uniform,solver=dpmpp2m@nfe=2",
                              "schedule:logsnr_uniform,solver=dpmpp2m@nfe=10"], episodes=1, seed=0,
                     env_kwargs={"model": "digits", "distribution_metrics": True, "batch_size": 64,
                                 "reference_steps": 32}, progress=False)
    assert {"error", "sw2", "mmd", "frechet"} <= set(table.columns)
    coarse, fine = table.sort_values("cost").itertuples()
    assert fine.error < coarse.error and fine.sw2 < coarse.sw2 and fine.frechet < coarse.frechet


@pytest.mark.parametrize("model", ["gmm-2d", "digits"])  # float64 and float32 models
def test_near_full_and_tiny_steps_never_make_a_degenerate_step(model):
    """An agent may cover 0.99999 of the range and then ask for the smallest fraction: the episode goes on with
    distinct times or finishes at t_min, never raises."""
    env = gym.make(ENV_ID, model=model, nfe=8, min_fraction=1e-4, **SMALL)
    env.reset(seed=0)
    done, actions = False, iter([0.99999, 0.99999, 0.0, 0.0, 0.99999, 0.0, 0.0, 0.0])
    while not done:
        _, reward, done, _, info = env.step(np.array([next(actions)], np.float32))
    assert math.isfinite(reward) and info["times"][-1] == env.unwrapped.process.t_end
    assert np.all(np.diff(info["times"]) < 0) and info["cost"] <= 8


def test_a_reference_coarser_than_the_solver_is_flagged_and_kept_off_the_pareto_front():
    coarse = {"batch_size": 8, "reference_steps": 4, "nfe": 5}
    table = evaluate(ENV_ID, ["schedule:logsnr_uniform,solver=dpmpp2m", "schedule:time_uniform,solver=dpmpp2m@nfe=4"],
                     episodes=1, env_kwargs=coarse, progress=False)
    assert table["warning"].iloc[0].startswith("reference_steps=4 is coarser than the 5-NFE solver")
    assert table["warning"].iloc[1] == ""  # 4 reference steps judge a 4-NFE solver
    summary = summarize(table)
    assert not summary.loc["schedule:logsnr_uniform,solver=dpmpp2m", "pareto"]
