import pytest
import torch

from adaptstep.diffusion.reference import REFERENCE_STEPS, reference_gap, reference_solution
from adaptstep.nn.gmm import gmm_2d, gmm_64d


@pytest.mark.parametrize("factory", [gmm_2d, lambda device: gmm_64d(device=device, components=6)], ids=["2d", "64d"])
def test_reference_is_deterministic_and_converges_at_fourth_order(factory):
    mixture = factory(device="cpu")
    schedule = mixture.schedule
    x = mixture.sample_marginal(8, schedule.t_max, torch.Generator().manual_seed(0))
    solutions = {steps: reference_solution(mixture, schedule, x, steps=steps) for steps in (128, 256, 512)}
    assert torch.equal(solutions[512], reference_solution(mixture, schedule, x, steps=512))
    coarse_gap = float((solutions[128] - solutions[256]).abs().max())
    fine_gap = float((solutions[256] - solutions[512]).abs().max())
    assert fine_gap <= 1e-6
    assert 10 < coarse_gap / fine_gap < 25  # RK4: 16x per doubling, so the default (1024 steps) is good to ~1e-9
    assert REFERENCE_STEPS >= 1024


def test_reference_gap_is_the_n_versus_2n_difference():
    mixture = gmm_2d(device="cpu")
    x = mixture.sample_marginal(4, 0.5, torch.Generator().manual_seed(1))
    gap = reference_gap(mixture, mixture.schedule, x, t_start=0.5, t_end=0.01, steps=64)
    coarse = reference_solution(mixture, mixture.schedule, x, t_start=0.5, t_end=0.01, steps=64)
    fine = reference_solution(mixture, mixture.schedule, x, t_start=0.5, t_end=0.01, steps=128)
    assert 0 < gap < 1e-6
    assert gap == float((coarse - fine).abs().max())
