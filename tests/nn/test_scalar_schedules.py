"""The schedules' float (``math``) methods equal their tensor methods, and the solvers' float coefficients keep the
samples of the tensor formulas (to <= 1e-6)."""

import math

import pytest
import torch

from adaptstep.nn.gmm import gmm_2d
from adaptstep.nn.schedules import make_noise_schedule
from adaptstep.nn.solvers import DPMSolverPlusPlus, _solve, _unipc_rhos

SCHEDULES = [("linear", {}), ("cosine", {}), ("discrete", {}), ("discrete", {"num_steps": 7})]


@pytest.mark.parametrize(("name", "kwargs"), SCHEDULES)
def test_scalar_methods_equal_the_tensor_methods(name, kwargs):
    schedule = make_noise_schedule(name, **kwargs)
    times = torch.linspace(schedule.t_min, schedule.t_max, 57, dtype=torch.float64).tolist() + [0.5 * schedule.t_min]
    for t in times:
        tensor = torch.tensor(t, dtype=torch.float64)
        for scalar, method in ((schedule.log_alpha_scalar, schedule.log_alpha), (schedule.alpha_scalar, schedule.alpha),
                               (schedule.log_sigma_scalar, schedule.log_sigma),
                               (schedule.lambda_scalar, schedule.lambda_)):
            assert scalar(t) == pytest.approx(float(method(tensor)), rel=1e-12, abs=1e-14, nan_ok=True)
        lam = schedule.lambda_scalar(t)
        expected = float(schedule.inverse_lambda(torch.tensor(lam, dtype=torch.float64)))
        assert schedule.inverse_lambda_scalar(lam) == pytest.approx(expected, rel=1e-10, abs=1e-13, nan_ok=True)
    for lam in (-30.0, -5.0, 0.0, 5.0, 30.0):  # far tails: the logaddexp form stays finite
        expected = float(schedule.inverse_lambda(torch.tensor(lam, dtype=torch.float64)))
        assert schedule.inverse_lambda_scalar(lam) == pytest.approx(expected, rel=1e-10, abs=1e-13, nan_ok=True)


def test_scalar_lambda_at_time_zero_is_infinite_as_torch_gives():
    schedule = make_noise_schedule("linear")
    assert schedule.lambda_scalar(0.0) == math.inf == float(schedule.lambda_(torch.tensor(0.0, dtype=torch.float64)))
    assert schedule.log_sigma_scalar(0.0) == -math.inf


def test_solve_matches_torch_linalg_solve():
    generator = torch.Generator().manual_seed(0)
    for n in (1, 2, 3):
        matrix = torch.rand(n, n, generator=generator, dtype=torch.float64) + n * torch.eye(n, dtype=torch.float64)
        vector = torch.rand(n, generator=generator, dtype=torch.float64)
        expected = torch.linalg.solve(matrix, vector).tolist()
        assert _solve(matrix.tolist(), vector.tolist()) == pytest.approx(expected, rel=1e-12)


def reference_dpmpp(mixture, x, times, orders):
    """DPM-Solver++ (``solver_type="dpmsolver"``, 3M ``"exact"``) with its coefficients as 0-d float64 tensors."""
    schedule, lambdas, x0s = mixture.schedule, [], []
    as_t = lambda value: torch.tensor(value, dtype=torch.float64)  # noqa: E731
    for t, t_next, order in zip(times[:-1], times[1:], orders, strict=True):
        t, t_next = as_t(t), as_t(t_next)
        lambdas, x0s = (lambdas + [schedule.lambda_(t)])[-3:], (x0s + [mixture.predict_x0(x, t)])[-3:]
        h = schedule.lambda_(t_next) - lambdas[-1]
        alpha_next, phi1 = schedule.alpha(t_next), torch.expm1(-h)
        x_next = torch.exp(schedule.log_sigma(t_next) - schedule.log_sigma(t)) * x - alpha_next * phi1 * x0s[-1]
        if order >= 2:
            r0 = (lambdas[-1] - lambdas[-2]) / h
            d1_0 = (x0s[-1] - x0s[-2]) / r0
            phi2 = phi1 / h + 1
            if order == 2:
                x_next = x_next - 0.5 * alpha_next * phi1 * d1_0
            else:
                r1 = (lambdas[-2] - lambdas[-3]) / h
                d1_1 = (x0s[-2] - x0s[-3]) / r1
                d1 = d1_0 + r0 / (r0 + r1) * (d1_0 - d1_1)
                d2 = (d1_0 - d1_1) / (r0 + r1)
                x_next = x_next + alpha_next * phi2 * d1 - 2.0 * alpha_next * (phi2 / h - 0.5) * d2
        x = x_next
    return x


def test_dpmpp_with_float_coefficients_keeps_the_tensor_formula_samples():
    mixture = gmm_2d()
    schedule = mixture.schedule
    x = mixture.sample_marginal(64, schedule.t_max, torch.Generator().manual_seed(1))
    times = torch.linspace(schedule.t_max, schedule.t_min, 9, dtype=torch.float64).tolist()
    orders = [1, 2, 3, 3, 2, 3, 3, 1]
    solver = DPMSolverPlusPlus(mixture, schedule)
    ours = x
    for t, t_next, order in zip(times[:-1], times[1:], orders, strict=True):
        ours = solver.step(ours, t, t_next, order)
    expected = reference_dpmpp(mixture, x, times, orders)
    assert float((ours - expected).abs().max()) <= 1e-6 * float(expected.abs().max())


def reference_rhos(h, ratios, order, variant, corrector):
    """UniPC's (φ1·h, B(h), ρ) as diffusers computes them, with 0-d float64 tensors (the tensor formula)."""
    h = torch.tensor(h, dtype=torch.float64)
    hh = -h
    h_phi_1 = torch.expm1(hh)
    b_h = hh if variant == "bh1" else torch.expm1(hh)
    rks = torch.tensor([*ratios, 1.0], dtype=torch.float64)
    h_phi_k, factorial, rows, rhs = h_phi_1 / hh - 1, 1, [], []
    for i in range(1, order + 1):
        rows.append(rks ** (i - 1))
        rhs.append(h_phi_k * factorial / b_h)
        factorial *= i + 1
        h_phi_k = h_phi_k / hh - 1 / factorial
    matrix, vector = torch.stack(rows), torch.stack(rhs)
    if corrector:
        rhos = [0.5] if order == 1 else torch.linalg.solve(matrix, vector).tolist()
    else:
        rhos = {1: [], 2: [0.5]}.get(order) or torch.linalg.solve(matrix[:-1, :-1], vector[:-1]).tolist()
    return float(h_phi_1), float(b_h), rhos


@pytest.mark.parametrize("variant", ["bh1", "bh2"])
@pytest.mark.parametrize("corrector", [False, True])
@pytest.mark.parametrize("order", [1, 2, 3])
def test_unipc_float_coefficients_equal_the_tensor_formula(variant, corrector, order):
    for h, ratios in ((0.3, [-0.8, -1.9]), (1.7, [-0.4, -0.7]), (0.05, [-1.0, -2.0])):
        h_phi_1, b_h, rhos = _unipc_rhos(h, ratios[:order - 1], order, variant, corrector)
        expected = reference_rhos(h, ratios[:order - 1], order, variant, corrector)
        assert (h_phi_1, b_h) == pytest.approx(expected[:2], rel=1e-12)
        assert rhos == pytest.approx(expected[2], rel=1e-9)
