"""TS-DPM's time shift: the variance-matched per-sample network time and its hook in DPM-Solver++."""

import math

import pytest
import torch

from adaptstep.diffusion.networks import DenoiserConfig, NeuralDenoiser
from adaptstep.nn.gmm import gmm_2d
from adaptstep.nn.schedules import LinearVPSchedule
from adaptstep.nn.solvers import sample
from adaptstep.nn.time_shift import TimeShift
from adaptstep.nn.timesteps import logsnr_uniform

F64 = torch.float64


def _with_variances(variances: list[float], dim: int = 32) -> torch.Tensor:
    """Rows whose unbiased sample variance over the features is exactly ``variances``."""
    z = torch.randn(len(variances), dim, generator=torch.Generator().manual_seed(0), dtype=F64)
    z = (z - z.mean(dim=1, keepdim=True)) / z.std(dim=1, keepdim=True)
    return z * torch.tensor(variances, dtype=F64).sqrt()[:, None]


def test_the_shifted_time_is_the_windowed_argmin_of_the_variance_mismatch():
    schedule, t, shift = LinearVPSchedule(), torch.tensor(0.5, dtype=F64), TimeShift(window=0.2)
    sigma2_at = lambda times: schedule.sigma(times) ** 2  # noqa: E731
    variances = [float(sigma2_at(0.45)), float(sigma2_at(0.58)), 0.02, 0.9999, 3.0]
    x = _with_variances(variances)
    shifted = shift.network_times(x, t, schedule)
    assert shifted.shape == (5,)
    candidates = torch.linspace(0.4, 0.6, 200_001, dtype=F64)  # brute force over the window [t − w/2, t + w/2]
    mismatch = (torch.tensor(variances, dtype=F64)[:, None] - sigma2_at(candidates)[None, :]) ** 2
    assert torch.allclose(shifted, candidates[mismatch.argmin(dim=1)], atol=2e-6)
    assert shifted[:2].tolist() == pytest.approx([0.45, 0.58], abs=1e-12)  # σ²_{t'} = Var inside the window
    assert shifted[2:].tolist() == pytest.approx([0.4, 0.6, 0.6], abs=1e-12)  # clipped to the window


def test_the_window_is_clipped_to_the_schedule_and_the_cutoff_disables_the_shift():
    schedule = LinearVPSchedule()
    x = _with_variances([1e-9, 2.0])
    assert TimeShift(0.1).network_times(x, torch.tensor(0.02, dtype=F64), schedule).tolist() == pytest.approx(
        [schedule.t_min, 0.07])
    assert TimeShift(0.1).network_times(x, torch.tensor(0.98, dtype=F64), schedule).tolist() == pytest.approx(
        [0.93, 1.0])
    t = torch.tensor(0.3, dtype=F64)
    assert TimeShift(0.1, cutoff=0.3).network_times(x, t, schedule) is t
    assert TimeShift(0.0).network_times(x, t, schedule) is t


def test_from_steps_maps_ts_dpm_units_to_continuous_time():
    assert TimeShift.from_steps(30, 300) == TimeShift(0.03, 0.301)


@pytest.fixture(scope="module")
def gmm_problem():
    mixture = gmm_2d(device="cpu")
    x = mixture.sample_marginal(32, mixture.schedule.t_max, torch.Generator().manual_seed(1))
    return mixture, x, logsnr_uniform(mixture.schedule, 8, device="cpu")


@pytest.mark.parametrize("solver", ["ddim", "dpmpp2m", "dpmpp3m"])
@pytest.mark.parametrize("shift", [None, TimeShift(0.0), TimeShift(0.2, cutoff=2.0)])
def test_no_effective_shift_reproduces_the_sampler_bit_for_bit(gmm_problem, solver, shift):
    mixture, x, times = gmm_problem
    plain, _ = sample(mixture, mixture.schedule, x, times, solver)
    shifted, nfe = sample(mixture, mixture.schedule, x, times, solver, time_shift=shift)
    assert torch.equal(plain, shifted) and nfe == 8


class _Recorder:
    """A denoiser wrapper that records the shape of every time it is called with."""

    def __init__(self, denoiser) -> None:
        self.denoiser, self.shapes = denoiser, []

    def predict_x0(self, x, t):
        self.shapes.append(tuple(t.shape))
        return self.denoiser.predict_x0(x, t)


def test_per_sample_times_reach_the_gmm_after_the_first_step(gmm_problem):
    mixture, x, times = gmm_problem
    recorder = _Recorder(mixture)
    plain, _ = sample(mixture, mixture.schedule, x, times, "dpmpp2m")
    shifted, nfe = sample(recorder, mixture.schedule, x, times, "dpmpp2m", time_shift=TimeShift(0.05))
    assert nfe == 8 and recorder.shapes == [()] + [(32,)] * 7
    assert shifted.shape == x.shape and bool(torch.all(torch.isfinite(shifted))) and not torch.equal(plain, shifted)


def test_per_sample_times_work_with_the_neural_denoiser():
    network = NeuralDenoiser(DenoiserConfig(dim=4, width=16, depth=1, frequencies=4)).double()
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(2), dtype=F64)
    times = logsnr_uniform(network.schedule, 5, device="cpu")
    recorder = _Recorder(network)
    with torch.no_grad():
        shifted, nfe = sample(recorder, network.schedule, x, times, "dpmpp3m", time_shift=TimeShift(0.1))
    assert nfe == 5 and recorder.shapes == [()] + [(8,)] * 4 and bool(torch.all(torch.isfinite(shifted)))


def test_the_solver_keeps_the_unshifted_times():
    """With a denoiser that ignores t, shifting its time changes nothing: the λ arithmetic is unshifted."""

    class Shrink:
        def predict_x0(self, x, t):
            return 0.5 * x

    schedule = LinearVPSchedule()
    x = torch.randn(16, 3, generator=torch.Generator().manual_seed(3), dtype=F64)
    times = logsnr_uniform(schedule, 6, device="cpu")
    plain, _ = sample(Shrink(), schedule, x, times, "dpmpp3m")
    shifted, _ = sample(Shrink(), schedule, x, times, "dpmpp3m", time_shift=TimeShift(0.3))
    assert torch.equal(plain, shifted)


@pytest.mark.parametrize(("call", "match"), [
    (lambda: TimeShift(-0.1), "window must be a finite number >= 0"),
    (lambda: TimeShift(0.1, cutoff=math.nan), "cutoff must be a finite number >= 0"),
    (lambda: TimeShift.from_steps(30, -1), "cutoff_step must be an int >= 0"),
    (lambda: TimeShift(0.1).network_times(torch.zeros(4, 1), torch.tensor(0.5), LinearVPSchedule()), "x must have"),
    (lambda: sample(gmm_2d(device="cpu"), LinearVPSchedule(), torch.zeros(2, 2), [1.0, 0.5], "heun",
                    time_shift=TimeShift(0.1)), "time_shift needs solver"),
])
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()
