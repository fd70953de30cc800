import math

import pytest
import torch

from adaptstep.nn.schedules import (
    CosineVPSchedule,
    DiscreteVPSchedule,
    LinearVPSchedule,
    make_noise_schedule,
)

SCHEDULES = [LinearVPSchedule(), CosineVPSchedule(), DiscreteVPSchedule(), LinearVPSchedule(0.5, 10.0, t_min=1e-4)]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: type(s).__name__)
def test_alpha_sigma_lambda_are_consistent_and_lambda_inverts(schedule):
    t = torch.linspace(schedule.t_min, schedule.t_max, 997, dtype=torch.float64)
    alpha, sigma, lam = schedule.alpha(t), schedule.sigma(t), schedule.lambda_(t)
    assert torch.allclose(alpha**2 + sigma**2, torch.ones_like(t), atol=1e-14, rtol=0)
    assert torch.allclose(lam, torch.log(alpha) - torch.log(sigma), atol=1e-12, rtol=0)
    assert bool(torch.all(lam[1:] < lam[:-1]))
    assert torch.allclose(schedule.inverse_lambda(lam), t, atol=1e-12, rtol=0)
    assert torch.allclose(schedule.edm_sigma(t), sigma / alpha, rtol=1e-12, atol=0)
    assert float(schedule.lambda_(schedule.t_min)) == pytest.approx(float(lam[0]))


def test_linear_schedule_matches_its_closed_form():
    schedule = LinearVPSchedule(beta_min=0.1, beta_max=20.0)
    assert float(schedule.log_alpha(0.5)) == pytest.approx(-0.25 * 0.25 * 19.9 - 0.5 * 0.5 * 0.1, rel=1e-15)
    assert float(schedule.log_alpha(0.0)) == 0.0


def test_cosine_schedule_matches_nichol_dhariwal_and_ends_where_dpm_solver_ends_it():
    schedule = CosineVPSchedule(s=0.008)
    f0 = math.cos(math.pi / 2 * 0.008 / 1.008)
    assert float(schedule.alpha(0.5)) == pytest.approx(math.cos(math.pi / 2 * 0.508 / 1.008) / f0, rel=1e-14)
    assert float(schedule.alpha(0.0)) == pytest.approx(1.0, abs=1e-15)
    assert schedule.t_max == 0.9946
    assert -5.1 < float(schedule.lambda_(schedule.t_max)) < -4.5


def test_discrete_schedule_reproduces_ddpm_alphas_cumprod_at_grid_points():
    schedule = DiscreteVPSchedule()
    betas = torch.linspace(1e-4, 0.02, 1000, dtype=torch.float64)
    alphas_cumprod = torch.cumprod(1 - betas, dim=0)
    index = torch.arange(1000)
    times = schedule.index_to_time(index)
    assert torch.allclose(times, (index + 1).double() / 1000, atol=0, rtol=1e-15)
    assert torch.allclose(schedule.alpha(times) ** 2, alphas_cumprod, atol=1e-14, rtol=0)
    assert torch.allclose(schedule.time_to_index(times), index.double(), atol=1e-9, rtol=0)
    assert (schedule.t_min, schedule.t_max) == (1e-3, 1.0)
    between = float(schedule.log_alpha(0.0105))  # halfway between knots 10 and 11 (t = 0.010, 0.011)
    assert between == pytest.approx(0.5 * float(schedule.log_alpha(0.010) + schedule.log_alpha(0.011)), rel=1e-12)


def test_discrete_schedule_accepts_custom_betas():
    betas = torch.full((50,), 0.05, dtype=torch.float64)
    schedule = DiscreteVPSchedule(betas=betas)
    assert schedule.num_steps == 50 and schedule.t_min == pytest.approx(0.02)
    assert float(schedule.alpha(1.0)) ** 2 == pytest.approx(0.95**50, rel=1e-12)


def test_make_noise_schedule_builds_each_name():
    assert isinstance(make_noise_schedule("linear", beta_max=10.0), LinearVPSchedule)
    assert isinstance(make_noise_schedule("cosine"), CosineVPSchedule)
    assert make_noise_schedule("discrete", num_steps=100).num_steps == 100


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: make_noise_schedule("sigmoid"), "name must be one of"),
        (lambda: LinearVPSchedule(beta_min=-0.1), "beta_min"),
        (lambda: LinearVPSchedule(beta_min=1.0, beta_max=0.5), "beta_max"),
        (lambda: LinearVPSchedule(t_min=0.0), "t_min"),
        (lambda: CosineVPSchedule(s=0.0), "s must be"),
        (lambda: CosineVPSchedule(t_min=0.999), "t_min"),
        (lambda: DiscreteVPSchedule(num_steps=1), "num_steps"),
        (lambda: DiscreteVPSchedule(betas=torch.tensor([0.1, 1.5])), "betas"),
        (lambda: DiscreteVPSchedule(betas=torch.full((3,), 0.1), num_steps=4), "num_steps"),
    ],
)
def test_bad_parameters_raise_naming_the_parameter(build, match):
    with pytest.raises(ValueError, match=match):
        build()
