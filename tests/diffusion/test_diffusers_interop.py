"""adaptstep schedules through diffusers: the σ mapping, the order rule, and DPM-Solver++ agreement.

The model is an exact GaussianMixture on a DiscreteVPSchedule with diffusers' own 1000 linear betas (float32
values, held in float64), so both sides see the same noise levels at the same integer timesteps.

Tolerances (relative, ‖x_adaptstep − x_diffusers‖ / ‖x‖, float64 on the adaptstep side):
- diffusers as shipped keeps ᾱ and σ̃ in float32 (σ̃ = √((1 − ᾱ)/ᾱ) cancels near τ = 0: σ̃ at τ = 0 is 8.3e-5
  off) and casts the sample to float32 in ``step``: 1e-4 (measured up to 2.7e-5, 3M with 20 steps ending at
  σ̃_min, whose long last step magnifies the error of that σ̃; 2M up to 4.1e-6);
- with diffusers' σ̃ table replaced by the same formula in float64 (the update code, order rule and final
  step stay diffusers'), only the float32 sample cast remains: 2e-6 (measured up to 5.3e-7).
"""

import sys

import numpy as np
import pytest
import torch

from adaptstep.diffusion.diffusers_interop import (
    diffusers_dpm_orders,
    make_scheduler,
    require_diffusers,
    sample_with_scheduler,
    scheduler_times,
)
from adaptstep.diffusion.export import export_schedule
from adaptstep.nn.gmm import gmm_2d
from adaptstep.nn.schedules import DiscreteVPSchedule, LinearVPSchedule
from adaptstep.nn.solvers import DPMSolverPlusPlus, sample

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # diffusers on numpy 2
FLOAT32_EPS = float(np.finfo(np.float32).eps)
NATIVE_RTOL, FLOAT64_RTOL = 1e-4, 2e-6


@pytest.fixture(scope="module")
def diffusers():
    return pytest.importorskip("diffusers")


@pytest.fixture(scope="module")
def setup(diffusers):
    """diffusers' linear betas as an adaptstep DiscreteVPSchedule, a GMM on it, and noise at t = 1 (τ = 999)."""
    schedule = DiscreteVPSchedule(betas=diffusers.DPMSolverMultistepScheduler(beta_schedule="linear").betas)
    mixture = gmm_2d(schedule=schedule, device="cpu")
    x = mixture.sample_marginal(64, 1.0, torch.Generator().manual_seed(0))
    return schedule, mixture, x


def linspace_schedule(schedule: DiscreteVPSchedule, steps: int, orders: list[int]):
    """diffusers' "linspace" timesteps 999 → 0 (steps + 1 integers) as an exported schedule."""
    taus = torch.from_numpy(np.linspace(999, 0, steps + 1).round().astype(np.int64))
    return export_schedule(schedule.index_to_time(taus), orders, schedule)


def relative_error(x: torch.Tensor, reference: torch.Tensor) -> float:
    return float((x - reference).norm() / reference.norm())


def test_missing_diffusers_raises_an_import_error_with_the_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "diffusers", None)
    with pytest.raises(ImportError, match=r"pip install adaptstep\[diffusers\]"):
        require_diffusers()


def test_integer_timesteps_map_to_the_discrete_schedules_noise_levels(diffusers, setup):
    """σ̃_τ = √((1 − ᾱ_τ)/ᾱ_τ) with ᾱ_τ = α_t² at t = (τ + 1)/N, up to diffusers' float32 rounding: ᾱ is a float32
    cumprod of τ + 1 factors and 1 − ᾱ cancels, so |Δσ̃/σ̃| ≤ ½ (τ + 2) ε32 / (1 − ᾱ_τ); we allow twice that."""
    schedule, _, _ = setup
    taus = torch.arange(999, -1, -1)
    times = schedule.index_to_time(taus)
    expected = schedule.edm_sigma(times)
    bound = (taus + 2) * FLOAT32_EPS / (1 - schedule.alpha(times) ** 2)
    for final, last in (("sigma_min", expected[-1]), ("zero", 0.0)):
        scheduler = diffusers.DPMSolverMultistepScheduler(final_sigmas_type=final)
        scheduler.set_timesteps(timesteps=taus.tolist())
        sigmas = scheduler.sigmas.double()
        assert torch.all((sigmas[:-1] / expected - 1).abs() <= bound)
        assert abs(float(sigmas[-1]) - float(last)) <= float(bound[-1]) * float(last)
    assert float((sigmas[:-1] / expected - 1).abs().max()) > 1e-6  # diffusers' σ̃ really is float32
    indices = schedule.time_to_index(scheduler_times(schedule, scheduler)[:-1])
    torch.testing.assert_close(indices, taus.double(), rtol=0, atol=1e-3)  # back to τ within 1e-3 grid steps
    assert float(scheduler_times(schedule, scheduler)[-1]) == 0.0


def _observed_orders(scheduler) -> list[int]:
    """The orders DPMSolverMultistepScheduler.step really uses, by spying on its three update methods."""
    calls: list[int] = []
    for order, name in ((1, "dpm_solver_first_order_update"), (2, "multistep_dpm_solver_second_order_update"),
                        (3, "multistep_dpm_solver_third_order_update")):
        method = getattr(scheduler, name)
        setattr(scheduler, name, lambda *args, _method=method, _order=order, **kwargs:
                calls.append(_order) or _method(*args, **kwargs))
    x = torch.ones(1, 2, dtype=torch.float64)
    for timestep in scheduler.timesteps:
        x = scheduler.step(torch.zeros_like(x), timestep, x).prev_sample
    return calls


def test_diffusers_dpm_orders_is_the_rule_diffusers_follows(diffusers):
    for steps in (1, 2, 3, 5, 14, 15, 18):
        for solver_order in (1, 2, 3):
            for lower_order_final in (True, False):
                for final_sigmas_type in ("zero", "sigma_min"):
                    for euler_at_final in (False, True):
                        options = {"solver_order": solver_order, "lower_order_final": lower_order_final,
                                   "final_sigmas_type": final_sigmas_type, "euler_at_final": euler_at_final}
                        scheduler = diffusers.DPMSolverMultistepScheduler(prediction_type="sample", **options)
                        scheduler.set_timesteps(steps)
                        assert _observed_orders(scheduler) == diffusers_dpm_orders(steps, **options), options
    assert diffusers_dpm_orders(10, 2, final_sigmas_type="sigma_min") == [1] + [2] * 8 + [1]
    assert diffusers_dpm_orders(16, 3, final_sigmas_type="sigma_min") == [1, 2] + [3] * 14
    with pytest.raises(ValueError, match="final_sigmas_type"):
        diffusers_dpm_orders(4, final_sigmas_type="last")


def _adaptstep_dpm(mixture, schedule, x, record, final_sigmas_type, solver_type, third_order):
    """adaptstep's DPMSolverPlusPlus with diffusers' orders on the exported times. With final_sigmas_type="zero"
    diffusers' last step goes to σ = 0, where the first-order update (σ_next/σ)x − α_next·expm1(−h)·x̂0 is x̂0
    exactly; adaptstep's DiscreteVPSchedule cannot step to t = 0 (log α extrapolates above 0 there), so that
    step is replicated as x̂0 of the last model call."""
    orders = diffusers_dpm_orders(record.steps, max(record.orders), final_sigmas_type=final_sigmas_type)
    solver = DPMSolverPlusPlus(mixture, schedule, solver_type=solver_type, third_order=third_order)
    times = record.times
    last = record.steps if final_sigmas_type == "sigma_min" else record.steps - 1
    for index in range(last):
        x = solver.step(x, times[index], times[index + 1], orders[index])
    return x if final_sigmas_type == "sigma_min" else mixture.predict_x0(x, torch.tensor(times[last]))


def _float64_sigmas(scheduler, schedule: DiscreteVPSchedule) -> None:
    """Replace diffusers' float32 σ̃ table by the same values in float64 (its σ̃_τ = σ_t/α_t at t = (τ + 1)/N)."""
    times = schedule.index_to_time(scheduler.timesteps.cpu())
    final = schedule.edm_sigma(schedule.t_min) if scheduler.config.final_sigmas_type == "sigma_min" else 0.0
    scheduler.sigmas = torch.cat([schedule.edm_sigma(times), torch.tensor([final], dtype=torch.float64)])


@pytest.mark.parametrize("final_sigmas_type", ["sigma_min", "zero"])
@pytest.mark.parametrize("steps", [10, 20])
@pytest.mark.parametrize("diffusers_type, adaptstep_type", [("midpoint", "dpmsolver"), ("heun", "taylor")])
def test_dpm_solver_2m_agrees_with_diffusers(setup, steps, final_sigmas_type, diffusers_type, adaptstep_type):
    schedule, mixture, x = setup
    record = linspace_schedule(schedule, steps, diffusers_dpm_orders(steps, 2, final_sigmas_type=final_sigmas_type))
    expected = _adaptstep_dpm(mixture, schedule, x, record, final_sigmas_type, adaptstep_type, "exact")
    options = {"final_sigmas_type": final_sigmas_type, "solver_type": diffusers_type}
    native, nfe = sample_with_scheduler(mixture, schedule, make_scheduler(record, **options), x)
    assert nfe == steps
    assert relative_error(native, expected) < NATIVE_RTOL
    scheduler = make_scheduler(record, **options)
    _float64_sigmas(scheduler, schedule)
    assert relative_error(sample_with_scheduler(mixture, schedule, scheduler, x)[0], expected) < FLOAT64_RTOL
    other = "taylor" if adaptstep_type == "dpmsolver" else "dpmsolver"  # the other 2M variant is far off
    assert relative_error(_adaptstep_dpm(mixture, schedule, x, record, final_sigmas_type, other, "exact"),
                          expected) > 100 * FLOAT64_RTOL


@pytest.mark.parametrize("final_sigmas_type", ["sigma_min", "zero"])
@pytest.mark.parametrize("steps", [10, 20])
def test_diffusers_3m_is_dpm_solvers_half_phi3_variant(setup, steps, final_sigmas_type):
    """diffusers' 3M multiplies φ3 by D2 = (D1_0 − D1_1)/(r0 + r1) like DPM-Solver: it is third_order="dpmsolver"
    to float32 rounding, and third_order="exact" (2·D2) differs by > 1e-3 relative."""
    schedule, mixture, x = setup
    record = linspace_schedule(schedule, steps, diffusers_dpm_orders(steps, 3, final_sigmas_type=final_sigmas_type))
    scheduler = make_scheduler(record, final_sigmas_type=final_sigmas_type)
    assert scheduler.config.solver_order == 3
    _float64_sigmas(scheduler, schedule)
    result, _ = sample_with_scheduler(mixture, schedule, scheduler, x)
    native, _ = sample_with_scheduler(mixture, schedule, make_scheduler(record, final_sigmas_type=final_sigmas_type), x)
    dpmsolver = _adaptstep_dpm(mixture, schedule, x, record, final_sigmas_type, "dpmsolver", "dpmsolver")
    exact = _adaptstep_dpm(mixture, schedule, x, record, final_sigmas_type, "dpmsolver", "exact")
    assert relative_error(result, dpmsolver) < FLOAT64_RTOL
    assert relative_error(native, dpmsolver) < NATIVE_RTOL
    assert relative_error(result, exact) > 1e-3


def test_epsilon_and_sample_predictions_give_the_same_run(setup):
    schedule, mixture, x = setup
    record = linspace_schedule(schedule, 12, diffusers_dpm_orders(12, 2, final_sigmas_type="sigma_min"))
    runs = [sample_with_scheduler(mixture, schedule, make_scheduler(record, prediction_type=kind), x)[0]
            for kind in ("sample", "epsilon")]
    assert relative_error(runs[1], runs[0]) < 1e-6


def test_euler_with_sigmas_agrees_with_adaptstep_euler(setup):
    schedule, mixture, x = setup
    record = linspace_schedule(schedule, 15, [1] * 15)
    scheduler = make_scheduler(record, "euler")
    torch.testing.assert_close(scheduler.sigmas.double(), torch.tensor(record.edm_sigmas, dtype=torch.float64),
                               rtol=1e-6, atol=0)
    result, nfe = sample_with_scheduler(mixture, schedule, scheduler, x)
    expected, expected_nfe = sample(mixture, schedule, x, torch.tensor(record.times), solver="euler")
    assert nfe == expected_nfe == 15
    assert relative_error(result, expected) < 1e-6


def test_unipc_follows_the_schedule_as_flow_sigmas(setup):
    """UniPC of order 1 without its corrector is DDIM: it matches adaptstep's order-1 steps through t_0…t_{N−1}
    and x̂0 at the end. The default UniPC (order 2, corrector on) lands near DPM-Solver++(2M) on the same points."""
    schedule, mixture, x = setup
    steps = 12
    record = linspace_schedule(schedule, steps, [1] * steps)
    ddim_scheduler = make_scheduler(record, "unipc", solver_order=1, disable_corrector=list(range(steps)))
    indices = schedule.time_to_index(scheduler_times(schedule, ddim_scheduler)[:-1])
    torch.testing.assert_close(indices, torch.tensor(record.timesteps[:-1], dtype=torch.float64), rtol=0, atol=1e-3)
    ddim, nfe = sample_with_scheduler(mixture, schedule, ddim_scheduler, x)
    expected = _adaptstep_dpm(mixture, schedule, x, record, "zero", "dpmsolver", "exact")
    assert nfe == steps and relative_error(ddim, expected) < 1e-6

    second_order = linspace_schedule(schedule, steps, diffusers_dpm_orders(steps, 2, final_sigmas_type="zero"))
    dpm, _ = sample_with_scheduler(mixture, schedule, make_scheduler(second_order, final_sigmas_type="zero"), x)
    unipc, _ = sample_with_scheduler(mixture, schedule, make_scheduler(record, "unipc"), x)
    velocity = make_scheduler(record, "unipc", prediction_type="flow_prediction")  # the model returns (x_s − x̂0)/s
    assert relative_error(sample_with_scheduler(mixture, schedule, velocity, x)[0], unipc) < 1e-6
    rms = lambda a, b: float((a - b).pow(2).mean().sqrt())  # noqa: E731
    assert rms(unipc, dpm) < 0.015 < 2 * 0.015 < rms(ddim, dpm)


def test_make_scheduler_rejects_what_diffusers_cannot_follow(setup):
    schedule, mixture, x = setup
    continuous = export_schedule([1.0, 0.3, 1e-3], [1, 2], LinearVPSchedule())
    with pytest.raises(ValueError, match="needs integer timesteps"):
        make_scheduler(continuous)
    make_scheduler(continuous, "euler")  # sigmas= works for any VP schedule
    colliding = export_schedule(schedule.index_to_time(torch.tensor([999, 10, 9.8, 0])), [1, 2, 2], schedule)
    with pytest.raises(ValueError, match="strictly decreasing"):
        make_scheduler(colliding)
    early_end = export_schedule(schedule.index_to_time(torch.tensor([999, 500, 20])), [1, 1], schedule)
    with pytest.raises(ValueError, match="final_sigmas_type"):
        make_scheduler(early_end)
    assert make_scheduler(early_end, final_sigmas_type="zero").timesteps.tolist() == [999, 500]
    with pytest.raises(ValueError, match="betas"):
        make_scheduler(early_end, config={"beta_schedule": "scaled_linear", "beta_end": 0.012},
                       final_sigmas_type="zero")
    with pytest.raises(ValueError, match="kind must be one of"):
        make_scheduler(early_end, "ddim")
    with pytest.raises(ValueError, match=r"unknown \['solver_ordr'\]"):
        make_scheduler(early_end, final_sigmas_type="zero", solver_ordr=3)
    with pytest.warns(UserWarning, match=r"orders \[1, 2, 2, 2, 1\]"):
        make_scheduler(linspace_schedule(schedule, 5, [1, 2, 2, 2, 2]))


def test_sample_with_scheduler_needs_a_fresh_scheduler_and_a_known_prediction_type(setup):
    schedule, mixture, x = setup
    record = linspace_schedule(schedule, 4, [1, 2, 2, 1])
    scheduler = make_scheduler(record)
    sample_with_scheduler(mixture, schedule, scheduler, x)
    with pytest.raises(ValueError, match="freshly set"):
        sample_with_scheduler(mixture, schedule, scheduler, x)
    with pytest.raises(ValueError, match="prediction_type"):
        sample_with_scheduler(mixture, schedule, make_scheduler(record, prediction_type="v_prediction"), x)


@pytest.mark.parametrize("steps", [10, 15])
def test_lower_order_final_below15_is_diffusers_dpm_solver_rule(diffusers, setup, steps):
    """DPMSolverMultistepScheduler(lower_order_final=True) on its own linspace timesteps (ending at σ̃_min) is
    adaptstep's 3M (third_order="dpmsolver") with lower_order_final="below15": lowered at 10 steps, not at 15,
    where "always" lowers and differs."""
    schedule, mixture, x = setup
    scheduler = diffusers.DPMSolverMultistepScheduler(beta_schedule="linear", prediction_type="sample", solver_order=3,
                                                      lower_order_final=True, final_sigmas_type="sigma_min")
    scheduler.set_timesteps(steps)
    times = scheduler_times(schedule, scheduler)
    native, nfe = sample_with_scheduler(mixture, schedule, scheduler, x)
    ours, used = sample(mixture, schedule, x, times, "dpmpp3m", lower_order_final="below15", third_order="dpmsolver")
    always, _ = sample(mixture, schedule, x, times, "dpmpp3m", lower_order_final="always", third_order="dpmsolver")
    assert nfe == used == steps
    assert relative_error(ours, native) < NATIVE_RTOL
    assert (relative_error(always, native) < NATIVE_RTOL) == (steps < 15)


@pytest.mark.parametrize("steps", [5, 10])
@pytest.mark.parametrize("variant", ["bh1", "bh2"])
@pytest.mark.parametrize("order", [2, 3])
def test_unipc_agrees_with_diffusers_unipc(diffusers, setup, steps, variant, order):
    """UniPCMultistepScheduler (corrector on, lower_order_final=True: min(order, steps left) at every budget) on its
    linspace timesteps is adaptstep's UniPC with lower_order_final="always"; the other B(h) is 1e-2 off."""
    schedule, mixture, x = setup
    scheduler = diffusers.UniPCMultistepScheduler(beta_schedule="linear", prediction_type="sample", solver_order=order,
                                                  solver_type=variant, final_sigmas_type="sigma_min")
    scheduler.set_timesteps(steps)
    times = scheduler_times(schedule, scheduler)
    native, nfe = sample_with_scheduler(mixture, schedule, scheduler, x)
    ours, used = sample(mixture, schedule, x, times, f"unipc{order}-{variant}", lower_order_final="always")
    other, _ = sample(mixture, schedule, x, times, f"unipc{order}-{'bh2' if variant == 'bh1' else 'bh1'}",
                      lower_order_final="always")
    assert nfe == used == steps
    assert relative_error(ours, native) < FLOAT64_RTOL  # measured up to 1.1e-7
    assert relative_error(other, native) > 1e-3
