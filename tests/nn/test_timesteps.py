import pytest
import torch

from adaptstep.nn.schedules import CosineVPSchedule, DiscreteVPSchedule, LinearVPSchedule
from adaptstep.nn.timesteps import TIMESTEPS, make_timesteps

SCHEDULES = [LinearVPSchedule(), CosineVPSchedule(), DiscreteVPSchedule()]


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("name", sorted(TIMESTEPS))
def test_timesteps_run_from_t_max_to_t_min_strictly_decreasing(schedule, name):
    times = make_timesteps(name, schedule, 12, device="cpu")
    assert times.shape == (13,) and times.dtype == torch.float64
    assert float(times[0]) == schedule.t_max and float(times[-1]) == schedule.t_min
    assert bool(torch.all(times[1:] < times[:-1]))


def test_each_schedule_is_uniform_in_its_own_variable():
    schedule = LinearVPSchedule()
    steps, t_start, t_end = 8, 0.8, 0.01
    uniform = make_timesteps("time_uniform", schedule, steps, t_start, t_end, device="cpu")
    assert torch.allclose(uniform.diff(), torch.full((steps,), (t_end - t_start) / steps, dtype=torch.float64))
    quadratic = make_timesteps("time_quadratic", schedule, steps, t_start, t_end, device="cpu")
    assert torch.allclose(quadratic.sqrt().diff(), quadratic.sqrt().diff()[0].expand(steps), atol=1e-14)
    lambdas = schedule.lambda_(make_timesteps("logsnr_uniform", schedule, steps, t_start, t_end, device="cpu"))
    assert torch.allclose(lambdas.diff(), lambdas.diff()[0].expand(steps), atol=1e-12)
    sigmas = schedule.edm_sigma(make_timesteps("edm", schedule, steps, t_start, t_end, device="cpu", rho=7.0))
    assert torch.allclose(sigmas ** (1 / 7), torch.linspace(float(sigmas[0]) ** (1 / 7), float(sigmas[-1]) ** (1 / 7), steps + 1, dtype=torch.float64), atol=1e-12)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"name": "karras"}, "name must be one of"),
        ({"steps": 0}, "steps must be an int >= 1"),
        ({"steps": 2.5}, "steps must be an int >= 1"),
        ({"t_start": 0.1, "t_end": 0.2}, "t_end < t_start"),
        ({"t_start": 1.5}, "t_start <= t_max"),
        ({"name": "edm", "rho": 0.0}, "rho must be > 0"),
    ],
)
def test_bad_timestep_arguments_raise(kwargs, match):
    arguments = {"name": "logsnr_uniform", "schedule": LinearVPSchedule(), "steps": 5, "device": "cpu"} | kwargs
    with pytest.raises(ValueError, match=match):
        make_timesteps(**arguments)
