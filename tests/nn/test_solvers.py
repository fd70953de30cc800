import pytest
import torch

from adaptstep.nn.denoisers import CountingDenoiser
from adaptstep.nn.gmm import gmm_2d
from adaptstep.nn.solvers import (
    SOLVERS,
    DPMSolverPlusPlus,
    EulerSolver,
    HeunSolver,
    dpm_solver_adaptive,
    UniPC,
    multistep_orders,
    sample,
)
from adaptstep.nn.timesteps import logsnr_uniform

F64 = torch.float64


@pytest.fixture(scope="module")
def problem():
    mixture = gmm_2d(device="cpu")
    x = mixture.sample_marginal(16, mixture.schedule.t_max, torch.Generator().manual_seed(0))
    return mixture, mixture.schedule, x


@pytest.mark.parametrize(("solver", "nfe_per_step"), [("ddim", 1), ("dpmpp2m", 1), ("dpmpp3m", 1), ("euler", 1), ("heun", 2),
                                                     ("unipc3-bh2", 1)])
@pytest.mark.parametrize("steps", [1, 5, 12])
def test_sample_reports_exact_nfe(problem, solver, nfe_per_step, steps):
    mixture, schedule, x = problem
    counter = CountingDenoiser(mixture)
    out, nfe = sample(counter, schedule, x, logsnr_uniform(schedule, steps, device="cpu"), solver)
    assert nfe == counter.nfe == nfe_per_step * steps
    assert out.shape == x.shape and bool(torch.all(torch.isfinite(out)))


def test_heun_skips_its_corrector_only_when_the_last_time_is_zero(problem):
    mixture, schedule, x = problem
    times = torch.cat([logsnr_uniform(schedule, 6, device="cpu"), torch.zeros(1, dtype=F64)])
    counter = CountingDenoiser(mixture)
    out, nfe = sample(counter, schedule, x, times, "heun")
    assert nfe == counter.nfe == 2 * 7 - 1
    before_last, _ = sample(mixture, schedule, x, times[:-1], "heun")
    assert torch.allclose(out, mixture.predict_x0(before_last, times[-2]), atol=1e-12)  # final Euler step to σ̃ = 0


def test_euler_in_edm_variables_is_ddim(problem):
    mixture, schedule, x = problem
    times = logsnr_uniform(schedule, 9, device="cpu")
    ddim, _ = sample(mixture, schedule, x, times, "ddim")
    euler, _ = sample(mixture, schedule, x, times, "euler")
    assert torch.allclose(ddim, euler, atol=1e-12, rtol=0)


def test_multistep_orders_follow_dpm_solver():
    assert multistep_orders(3, 5) == [1, 2, 3, 2, 1]
    assert multistep_orders(3, 5, lower_order_final=False) == [1, 2, 3, 3, 3]
    assert multistep_orders(2, 12) == [1] + [2] * 11
    assert multistep_orders(3, 10) == [1, 2] + [3] * 8
    assert multistep_orders(2, 1) == [1]


@pytest.mark.parametrize(("rule", "at10", "at15"), [
    ("always", [1, 2] + [3] * 6 + [2, 1], [1, 2] + [3] * 11 + [2, 1]),
    ("below15", [1, 2] + [3] * 6 + [2, 1], [1, 2] + [3] * 13),
    ("below10", [1, 2] + [3] * 8, [1, 2] + [3] * 13),
    ("never", [1, 2] + [3] * 8, [1, 2] + [3] * 13),
])
def test_final_order_rules_lower_where_their_names_say(rule, at10, at15):
    assert multistep_orders(3, 10, rule) == at10 and multistep_orders(3, 15, rule) == at15
    assert multistep_orders(3, 5, rule) == ([1, 2, 3, 3, 3] if rule == "never" else [1, 2, 3, 2, 1])
    with pytest.raises(ValueError, match="lower_order_final"):
        multistep_orders(3, 5, "sometimes")


@pytest.mark.parametrize("variant", ["bh1", "bh2"])
def test_unipc_corrects_with_the_new_x0_at_no_extra_nfe(problem, variant):
    """The first step is DDIM (nothing to correct); from the second on, x is corrected before the predictor."""
    mixture, schedule, x = problem
    times = logsnr_uniform(schedule, 4, device="cpu")
    counter = CountingDenoiser(mixture)
    unipc, ddim = UniPC(counter, schedule, variant), DPMSolverPlusPlus(mixture, schedule)
    first = unipc.step(x, times[0], times[1], 1)
    assert torch.equal(first, ddim.step(x, times[0], times[1], 1))
    second = unipc.step(first, times[1], times[2], 2)
    assert counter.nfe == 2 and torch.all(torch.isfinite(second))
    assert not torch.allclose(unipc.last_ddim_update, ddim.step(first, times[1], times[2], 1))  # x was corrected
    with pytest.raises(ValueError, match="previous step's t_next"):
        unipc.step(second, times[1], times[3], 2)
    with pytest.raises(ValueError, match="variant"):
        UniPC(mixture, schedule, "bh3")


def test_stepper_accepts_per_step_orders_and_matches_sample(problem):
    mixture, schedule, x = problem
    times = logsnr_uniform(schedule, 5, device="cpu")
    counter = CountingDenoiser(mixture)
    stepper = DPMSolverPlusPlus(counter, schedule)
    state = x
    for t, t_next, order in zip(times, times[1:], [1, 2, 3, 1, 2]):
        assert stepper.max_order >= order
        state = stepper.step(state, t, t_next, order)
    assert stepper.nfe == counter.nfe == 5 and stepper.history_length == 3
    by_sample, _ = sample(mixture, schedule, x, times, "dpmpp3m")  # orders [1, 2, 3, 2, 1]
    assert bool(torch.all(torch.isfinite(state))) and not torch.allclose(state, by_sample)
    repeat = DPMSolverPlusPlus(mixture, schedule)
    state = x
    for t, t_next, order in zip(times, times[1:], [1, 2, 3, 2, 1]):
        state = repeat.step(state, t, t_next, order)
    assert torch.equal(state, by_sample)


def test_stepper_rejects_orders_beyond_its_history_before_spending_nfe(problem):
    mixture, schedule, x = problem
    counter = CountingDenoiser(mixture)
    stepper = DPMSolverPlusPlus(counter, schedule)
    for bad in (2, 0, 4, 1.5):
        with pytest.raises(ValueError, match="order must be in"):
            stepper.step(x, 1.0, 0.5, bad)
    assert counter.nfe == 0
    x = stepper.step(x, 1.0, 0.5, 1)
    with pytest.raises(ValueError, match="<= 2"):
        stepper.step(x, 0.5, 0.2, 3)
    with pytest.raises(ValueError, match="t_next < t"):
        stepper.step(x, 0.5, 0.6, 2)
    with pytest.raises(ValueError, match="earlier"):
        stepper.step(x, 1.0, 0.6, 2)
    with pytest.raises(ValueError, match="order must be 1 when t_next = 0"):
        stepper.step(x, 0.5, 0.0, 2)
    assert counter.nfe == 1
    stepper.reset()
    assert stepper.history_length == 0 and stepper.max_order == 1


@pytest.mark.parametrize("order", [2, 3])
def test_adaptive_counts_every_attempt_and_reaches_t_min(problem, order):
    mixture, schedule, x = problem
    counter = CountingDenoiser(mixture)
    out, nfe, accepted, rejected = dpm_solver_adaptive(counter, schedule, x, order=order)
    assert nfe == counter.nfe == order * (accepted + rejected)
    assert accepted > 0 and rejected > 0  # the ring's mode split forces rejections at the default tolerances
    assert bool(torch.all(torch.isfinite(out)))
    tight, tight_nfe, _, _ = dpm_solver_adaptive(mixture, schedule, x, order=order, atol=1e-5, rtol=1e-5)
    assert tight_nfe > nfe


def test_adaptive_lands_on_t_end_within_its_tolerance(problem):
    mixture, schedule, x = problem
    t_end = 0.05
    out, _, _, _ = dpm_solver_adaptive(mixture, schedule, x, order=3, t_end=t_end, atol=1e-7, rtol=1e-7)
    reference, _ = sample(mixture, schedule, x, logsnr_uniform(schedule, 400, t_end=t_end, device="cpu"), "dpmpp3m")
    assert torch.allclose(out, reference, atol=1e-5)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda m, s, x: sample(m, s, x, [1.0, 0.5], "rk45"), "solver must be one of"),
        (lambda m, s, x: sample(m, s, x, [1.0], "ddim"), "timesteps"),
        (lambda m, s, x: sample(m, s, x, [0.5, 1.0], "ddim"), "timesteps"),
        (lambda m, s, x: DPMSolverPlusPlus(m, s, solver_type="midpoint"), "solver_type"),
        (lambda m, s, x: DPMSolverPlusPlus(m, s, third_order="taylor"), "third_order"),
        (lambda m, s, x: dpm_solver_adaptive(m, s, x, order=1), "order must be 2 or 3"),
        (lambda m, s, x: dpm_solver_adaptive(m, s, x, rtol=0.0), "rtol"),
        (lambda m, s, x: dpm_solver_adaptive(m, s, x, theta=1.5), "theta"),
        (lambda m, s, x: EulerSolver(m, s).step(x[0], 1.0, 0.5), "x must have shape"),
        (lambda m, s, x: HeunSolver(m, s).step(x, torch.ones(2), 0.5), "t must be a finite scalar"),
    ],
)
def test_bad_solver_arguments_raise(problem, call, match):
    with pytest.raises(ValueError, match=match):
        call(*problem)


def test_solver_names_are_listed():
    assert set(SOLVERS) == {"ddim", "dpmpp2m", "dpmpp3m", "euler", "heun", "unipc1-bh1", "unipc2-bh1", "unipc3-bh1",
                            "unipc1-bh2", "unipc2-bh2", "unipc3-bh2"}
