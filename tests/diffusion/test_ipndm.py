"""iPNDM (nn.ipndm): its coefficients, its warm-up and its measured order on unequal steps."""

import numpy as np
import pytest
import torch

from adaptstep.diffusion.reference import reference_solution
from adaptstep.nn.gmm import gmm_2d
from adaptstep.nn.ipndm import IPNDM, IPNDM_COEFFICIENTS, sample_ipndm
from adaptstep.nn.solvers import sample
from adaptstep.nn.timesteps import make_timesteps

STEPS = [80, 160, 320, 640]


@pytest.fixture(scope="module")
def problem():
    mixture = gmm_2d(device="cpu")
    x = mixture.sample_marginal(16, mixture.schedule.t_max, torch.Generator().manual_seed(0))
    return mixture, x, reference_solution(mixture, mixture.schedule, x)


def fitted_order(problem, grid: str, order: int) -> tuple[float, list[float]]:
    mixture, x, reference = problem
    errors = []
    for steps in STEPS:
        out, used = sample_ipndm(mixture, mixture.schedule, x, make_timesteps(grid, mixture.schedule, steps), order)
        assert used == steps
        errors.append(float((out - reference).abs().max()))
    return -np.polyfit(np.log(STEPS), np.log(errors), 1)[0], errors


def test_the_coefficients_are_adams_bashforths_and_sum_to_one():
    for order, coefficients in IPNDM_COEFFICIENTS.items():
        assert len(coefficients) == order and sum(coefficients) == pytest.approx(1.0)
    # order 4 integrates t³ exactly on equal steps from the slopes at 0, −1, −2, −3: ∫₀¹ t³ dt = 1/4
    assert sum(c * (-j) ** 3 for j, c in enumerate(IPNDM_COEFFICIENTS[4])) == pytest.approx(1 / 4)


def test_order_one_is_euler_and_the_first_step_of_any_order_too(problem):
    mixture, x, _ = problem
    times = make_timesteps("edm", mixture.schedule, 6)
    euler, _ = sample(mixture, mixture.schedule, x, times, solver="euler")
    torch.testing.assert_close(sample_ipndm(mixture, mixture.schedule, x, times, 1)[0], euler)
    first = IPNDM(mixture, mixture.schedule, 4).step(x, times[0], times[1])
    torch.testing.assert_close(first, sample(mixture, mixture.schedule, x, times[:2], solver="euler")[0])


@pytest.mark.parametrize("grid", ["logsnr_uniform", "edm"])
def test_equal_step_coefficients_on_unequal_steps_converge_at_order_two(problem, grid):
    """Measured: orders 3 and 4 converge at about 2 (2.0–2.6) on these grids, order 2 at 1.9, order 1 at 1.0: the
    equal-step coefficients lose the higher orders on steps unequal in σ̃ (the convergence test's regime)."""
    for order, low, high in ((1, 0.9, 1.1), (2, 1.7, 2.1), (3, 1.8, 2.8), (4, 1.8, 2.3)):
        slope, errors = fitted_order(problem, grid, order)
        assert low <= slope <= high, (order, slope, errors)


def test_a_bad_order_names_the_parameter():
    mixture = gmm_2d(device="cpu")
    with pytest.raises(ValueError, match="max_order"):
        IPNDM(mixture, mixture.schedule, 5)
