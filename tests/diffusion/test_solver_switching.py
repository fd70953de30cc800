"""Per-step solver choice: ``nn.solvers.SwitchingSolver`` and DiffusionSampler-v0's ``choose_solver``."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import adaptstep  # noqa: F401  (registers the env ids)
from adaptstep.agents import parse_controller
from adaptstep.diffusion.process import PROCESS_SOLVERS, load_sampler_model, noise_and_reference
from adaptstep.evaluation import play_episode
from adaptstep.nn.solvers import DPMSolverPlusPlus, SwitchingSolver, UniPC, multistep_orders
from adaptstep.nn.timesteps import make_timesteps

ENV_ID = "adaptstep/DiffusionSampler-v0"
SMALL = {"batch_size": 16, "reference_steps": 32}


def _run(stepper, x, times, orders, solvers=None):
    for i, (t, t_next, order) in enumerate(zip(times, times[1:], orders)):
        x = stepper.step(x, t, t_next, order) if solvers is None else stepper.step(x, t, t_next, order, solvers[i])
    return x


@pytest.mark.parametrize("solver", PROCESS_SOLVERS)
def test_a_constant_choice_reproduces_the_single_solver(solver):
    model, schedule = load_sampler_model("gmm-2d")
    x_T, _ = noise_and_reference("gmm-2d", 16, 3, 32)
    times = [float(t) for t in make_timesteps("logsnr_uniform", schedule, 7)]
    orders = multistep_orders(3, 7, "always")
    single = DPMSolverPlusPlus(model, schedule) if solver == "dpmpp" else UniPC(model, schedule, solver.split("-")[1])
    expected = _run(single, x_T, times, orders)
    switching = SwitchingSolver(model, schedule, "dpmpp")
    assert torch.equal(_run(switching, x_T, times, orders, [solver] * 7), expected)
    assert torch.equal(_run(SwitchingSolver(model, schedule, solver), x_T, times, orders), expected)
    assert switching.nfe == 7


def test_a_mixed_sequence_is_finite_and_each_update_matters():
    model, schedule = load_sampler_model("gmm-2d")
    x_T, reference = noise_and_reference("gmm-2d", 16, 3, 128)
    times = [float(t) for t in make_timesteps("time_uniform", schedule, 8)]
    orders = multistep_orders(3, 8, "always")
    mixed = ["unipc-bh1", "dpmpp", "unipc-bh2", "unipc-bh1", "dpmpp", "dpmpp", "unipc-bh1", "unipc-bh2"]
    x = _run(SwitchingSolver(model, schedule), x_T, times, orders, mixed)
    assert torch.isfinite(x).all()
    errors = []
    for solver in PROCESS_SOLVERS:
        single = _run(SwitchingSolver(model, schedule), x_T, times, orders, [solver] * 8)
        assert not torch.equal(x, single)
        errors.append(float((single - reference).pow(2).mean().sqrt()))
    error = float((x - reference).pow(2).mean().sqrt())
    assert min(errors) / 2 < error < 2 * max(errors)  # a mixture of consistent updates stays of their accuracy


def test_switching_solver_rejects_bad_arguments():
    model, schedule = load_sampler_model("gmm-2d")
    with pytest.raises(ValueError, match="solver must be one of"):
        SwitchingSolver(model, schedule, "heun")
    stepper = SwitchingSolver(model, schedule)
    x_T, _ = noise_and_reference("gmm-2d", 16, 3, 32)
    with pytest.raises(ValueError, match="solver must be one of"):
        stepper.step(x_T, 1.0, 0.5, 1, "euler")
    with pytest.raises(ValueError, match="order must be"):
        stepper.step(x_T, 1.0, 0.5, 2)


@pytest.mark.parametrize("kwargs", [{"choose_solver": True}, {"choose_solver": True, "choose_order": True,
                                                               "model": "gmm-64d", "nfe": 4}])
def test_check_env_passes_with_choose_solver(kwargs):
    env = gym.make(ENV_ID, **{**SMALL, **kwargs}).unwrapped
    check_env(env)
    assert env.action_space.shape == (1 + kwargs.get("choose_order", False) + 1,)


@pytest.mark.parametrize("spec", ["schedule:time_uniform,solver=unipc3-bh1", "schedule:logsnr_uniform,solver=dpmpp3m",
                                  "schedule:edm,solver=unipc2-bh2,lower_order_final=never"])
@pytest.mark.parametrize("choose_order", [False, True])
def test_a_fixed_schedule_through_the_solver_action_equals_the_solver_kwarg(spec, choose_order):
    """The same schedule run with its solver as the env kwarg, and through choose_solver's action from an env whose
    default solver is another one, gives the same endpoint and error."""
    controller = parse_controller(spec)
    overrides = dict(controller.env_overrides)
    kwarg_row = play_episode(gym.make(ENV_ID, nfe=6, **SMALL, **overrides), controller, seed=5)
    solver = overrides.pop("solver")
    other = next(name for name in PROCESS_SOLVERS if name != solver)
    env = gym.make(ENV_ID, nfe=6, **SMALL, **overrides, choose_solver=True, choose_order=choose_order, solver=other)
    unwrapped = env.unwrapped
    unwrapped.reset(seed=5)
    terminated, info = False, None
    times, orders = controller._plan(unwrapped)
    step = 0
    while not terminated:
        action = unwrapped.baseline_action(t_next=times[step + 1], order=orders[step], solver=solver)
        _, _, terminated, _, info = unwrapped.step(action)
        step += 1
    assert info["solvers"] == [solver] * 6
    assert info["error"] == kwarg_row["error"]


def test_decoding_the_solver_entry():
    env = gym.make(ENV_ID, **SMALL, choose_solver=True, nfe=3).unwrapped
    env.reset(seed=0)
    chosen = []
    for value in (0.0, 0.5, 1.0):
        *_, info = env.step(np.array([0.3, value], dtype=np.float32))
        chosen = info["solvers"]
    assert chosen == ["dpmpp", "unipc-bh1", "unipc-bh2"]


def test_a_solver_action_needs_choose_solver():
    env = gym.make(ENV_ID, **SMALL).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match="choose_solver"):
        env.baseline_action(t_next=0.5, order=1, solver="unipc-bh1")
    with pytest.raises(ValueError, match="choose_solver must be a bool"):
        gym.make(ENV_ID, **SMALL, choose_solver="yes")
