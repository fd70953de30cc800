"""Interpolants, their score/Tweedie conversions, the VP conversion of Kim et al. 2025 (Eqs. 8, 10, 11, 19), and
the exact Gaussian-mixture flow, checked against closed forms, finite differences and the continuity equation."""

import math

import numpy as np
import pytest
import torch

from adaptstep.flow.gmm_flow import GMMFlow, gmm_flow_2d, gmm_flow_64d
from adaptstep.flow.interpolants import LinearInterpolant, VPConvertedFlow, VPInterpolant
from adaptstep.nn.gmm import GaussianMixture

TIMES = torch.tensor([0.05, 0.2, 0.5, 0.8, 0.97], dtype=torch.float64)


@pytest.fixture(scope="module")
def flow2():
    return gmm_flow_2d(device="cpu")


@pytest.fixture(scope="module")
def flow64():
    return gmm_flow_64d(device="cpu")


def marginal_points(flow, t: float, n: int, seed: int) -> torch.Tensor:
    return flow.mixture.sample_marginal(n, t, torch.Generator().manual_seed(seed))


def vp_mixture(flow) -> GaussianMixture:
    """The same data distribution diffused along the VP path: the closed form of the converted flow's marginals."""
    mixture = flow.mixture
    return GaussianMixture(mixture.weights, mixture.means, mixture.covariances, VPInterpolant(), "cpu")


@pytest.mark.parametrize("path", [LinearInterpolant(), VPInterpolant(), VPInterpolant(beta_min=0.5, beta_max=5.0)])
def test_derivatives_match_central_differences(path):
    h = 1e-6
    for value, derivative in ((path.alpha, path.d_alpha), (path.sigma, path.d_sigma)):
        numeric = (value(TIMES + h) - value(TIMES - h)) / (2 * h)
        torch.testing.assert_close(derivative(TIMES), numeric, rtol=1e-7, atol=1e-8)
    # float inputs give 0-d float64 tensors of the same values
    assert path.alpha(0.5).dtype == torch.float64 and path.alpha(0.5).ndim == 0
    assert float(path.d_sigma(0.5)) == pytest.approx(float(path.d_sigma(TIMES)[2]), rel=1e-15)


def test_linear_and_vp_boundaries():
    linear, vp = LinearInterpolant(), VPInterpolant()
    torch.testing.assert_close(linear.alpha(TIMES) + linear.sigma(TIMES), torch.ones_like(TIMES))
    s = torch.linspace(0.0, 1.0, 101, dtype=torch.float64)
    torch.testing.assert_close(vp.alpha(s) ** 2 + vp.sigma(s) ** 2, torch.ones_like(s), rtol=0, atol=1e-14)
    assert float(vp.alpha(0.0)) == 1.0 and float(vp.sigma(0.0)) == 0.0
    # T(1) = (β_max + β_min)/2 = 10.05, so ᾱ(1) = e^{−5.025}
    assert float(vp.alpha(1.0)) == pytest.approx(math.exp(-5.025), rel=1e-12)
    assert bool(torch.all(torch.diff(vp.alpha(s)) < 0)) and bool(torch.all(torch.diff(vp.sigma(s)) > 0))


@pytest.mark.parametrize("betas", [(0.0, 1.0), (2.0, 1.0), (1.0, 1.0), (-1.0, 20.0)])
def test_vp_rejects_bad_betas(betas):
    with pytest.raises(ValueError, match="beta_min"):
        VPInterpolant(*betas)


def test_linear_time_and_time_of_linear_invert_each_other():
    vp = VPInterpolant()
    s = torch.linspace(0.01, 0.99, 50, dtype=torch.float64)
    t = vp.linear_time(s)
    assert bool(torch.all(torch.diff(t) > 0))
    # t_s has the VP path's signal-to-noise ratio: (1 − t_s)/t_s = ᾱ/σ̄
    torch.testing.assert_close((1 - t) / t, vp.alpha(s) / vp.sigma(s), rtol=1e-12, atol=0)
    for s_value, t_value in zip(s.tolist(), t.tolist()):
        assert vp.time_of_linear(t_value) == pytest.approx(s_value, abs=1e-12)
    for t_value in (0.001, 0.02, 0.3, 0.5, 0.9, 0.99):
        assert float(vp.linear_time(vp.time_of_linear(t_value))) == pytest.approx(t_value, abs=1e-12)
    for bad in (0.0, -0.1, float(vp.linear_time(1.0)), 1.0):
        with pytest.raises(ValueError, match="t must be in"):
            vp.time_of_linear(bad)


@pytest.mark.parametrize("name", ["2d", "64d"])
def test_score_and_tweedie_of_the_gmm_flow_match_the_mixture(name, flow2, flow64):
    flow = flow2 if name == "2d" else flow64
    linear = LinearInterpolant()
    for t in (0.1, 0.5, 0.9):
        x = marginal_points(flow, t, 64, seed=1)
        u = flow.velocity(x, t)
        torch.testing.assert_close(linear.score(x, u, t), flow.mixture.score(x, t), rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(linear.tweedie(x, u, t), flow.mixture.predict_x0(x, t), rtol=1e-9, atol=1e-9)
        # u = E[ε − x0 | x_t] with x_t = (1 − t)x̂0 + t·ε̂, i.e. u = (x_t − x̂0)/t
        torch.testing.assert_close(u, (x - flow.predict_x0(x, t)) / t, rtol=1e-9, atol=1e-9)
    # a per-row time vector gives the rows of the scalar-time results
    x = marginal_points(flow, 0.4, 3, seed=2)
    times = torch.tensor([0.1, 0.4, 0.8], dtype=torch.float64)
    rows = torch.cat([flow.velocity(x[i : i + 1], float(times[i])) for i in range(3)])
    torch.testing.assert_close(flow.velocity(x, times), rows, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(linear.tweedie(x, rows, times),
                               torch.cat([flow.predict_x0(x[i : i + 1], float(times[i])) for i in range(3)]))


@pytest.mark.parametrize("name", ["2d", "64d"])
def test_gmm_velocity_satisfies_the_continuity_equation(name, flow2, flow64):
    """∂_t log p_t + ∇·u + u·∇log p_t = 0 pointwise (∂_t p + ∇·(p u) = 0), by central differences of the closed-form
    log p_t in t and of the velocity in x: an independent check that u transports the mixture's marginals."""
    flow = flow2 if name == "2d" else flow64
    h = 1e-5
    for t in (0.3, 0.6, 0.9):
        x = marginal_points(flow, t, 6, seed=3)
        d_log_p = (flow.log_prob(x, t + h) - flow.log_prob(x, t - h)) / (2 * h)
        u = flow.velocity(x, t)
        shifts = h * torch.eye(flow.dim, dtype=torch.float64)
        plus = flow.velocity((x[:, None, :] + shifts).reshape(-1, flow.dim), t).reshape(len(x), flow.dim, flow.dim)
        minus = flow.velocity((x[:, None, :] - shifts).reshape(-1, flow.dim), t).reshape(len(x), flow.dim, flow.dim)
        divergence = torch.diagonal(plus - minus, dim1=1, dim2=2).sum(1) / (2 * h)
        residual = d_log_p + divergence + (u * flow.mixture.score(x, t)).sum(1)
        scale = d_log_p.abs() + divergence.abs() + 1.0
        assert float((residual.abs() / scale).max()) < 1e-5, (t, residual)


def test_gmm_velocity_is_the_conditional_mean_of_eps_minus_x0(flow2):
    """E[(ε − x0 − u(x_t))·h(x_t)] = 0 for test functions h, by Monte Carlo over (x0, ε) pairs (within 4 standard
    errors), the defining property of u = E[ε − x0 | x_t]; a wrong velocity (e.g. −x̂0 alone) fails it."""
    generator = torch.Generator().manual_seed(4)
    n = 200_000
    for t in (0.3, 0.7):
        x0 = flow2.sample_data(n, generator)
        eps = torch.randn(n, 2, generator=generator, dtype=torch.float64)
        xt = (1 - t) * x0 + t * eps
        tests = torch.cat([torch.ones(n, 1, dtype=torch.float64), xt, torch.tanh(3 * xt[:, :1] * xt[:, 1:])], dim=1)
        for u, must_pass in ((flow2.velocity(xt, t), True), (-flow2.predict_x0(xt, t), False)):
            terms = ((eps - x0 - u)[:, :, None] * tests[:, None, :]).reshape(n, -1)
            z = terms.mean(0) / (terms.std(0) / math.sqrt(n))
            assert bool((z.abs() < 4).all()) == must_pass, (t, z)


def rk4(flow, x: torch.Tensor, start: float, stop: float, steps: int) -> torch.Tensor:
    h = (stop - start) / steps
    t = start
    for _ in range(steps):
        k1 = flow.velocity(x, t)
        k2 = flow.velocity(x + 0.5 * h * k1, t + 0.5 * h)
        k3 = flow.velocity(x + 0.5 * h * k2, t + 0.5 * h)
        k4 = flow.velocity(x + h * k3, t + h)
        x, t = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4), t + h
    return x


def test_gmm_ode_pushes_marginals_forward_and_back(flow2):
    """Integrating dx/dt = u (RK4, 20 steps) from exact samples of p_0.5 gives samples of p_t': sample mean and
    covariance match the mixture's closed-form moments within 4 standard errors (n = 8000), and the flow map
    is invertible (0.5 → t' → 0.5 returns the start to 1e-6)."""
    n = 8000
    x = marginal_points(flow2, 0.5, n, seed=5)
    for stop in (0.15, 0.9):
        y = rk4(flow2, x, 0.5, stop, 20)
        mean, covariance = flow2.mixture.mean(stop), flow2.mixture.covariance(stop)
        centred = y - mean
        products = (centred[:, :, None] * centred[:, None, :]).reshape(n, -1)
        for sample, truth, terms in ((y.mean(0), mean, y), (products.mean(0), covariance.reshape(-1), products)):
            z = (sample - truth) / (terms.std(0) / math.sqrt(n))
            assert bool((z.abs() < 4).all()), (stop, z)
        back = rk4(flow2, y[:200], stop, 0.5, 20)
        torch.testing.assert_close(back, x[:200], rtol=0, atol=1e-6)


def test_single_gaussian_flow_map_is_the_closed_form_affine_map():
    """For one Gaussian N(μ, Σ = U diag(e) Uᵀ), p_t = N((1 − t)μ, S_t) with S_t = (1 − t)²Σ + t²I, and the ODE flow
    map from t to t' is x ↦ (1 − t')μ + S_t'^{1/2} S_t^{−1/2}(x − (1 − t)μ) (all S_t commute). RK4 on the GMM
    flow's velocity reproduces it to 1e-8, and (x(t + h) − x(t − h))/2h along it equals u(x(t), t)."""
    rotation = torch.linalg.qr(torch.from_numpy(np.random.default_rng(9).standard_normal((3, 3))))[0]
    eigenvalues = torch.tensor([0.01, 0.25, 2.0], dtype=torch.float64)
    mean = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    covariance = rotation @ torch.diag(eigenvalues) @ rotation.T
    flow = GMMFlow([1.0], mean[None], covariance[None], device="cpu")

    def root(t: float, power: float) -> torch.Tensor:
        return rotation @ torch.diag(((1 - t) ** 2 * eigenvalues + t**2) ** power) @ rotation.T

    x = torch.from_numpy(np.random.default_rng(10).standard_normal((16, 3)))
    start = 0.6
    for stop in (0.05, 0.3, 0.95):
        exact = (1 - stop) * mean + (x - (1 - start) * mean) @ (root(stop, 0.5) @ root(start, -0.5)).T
        torch.testing.assert_close(rk4(flow, x, start, stop, 200), exact, rtol=0, atol=1e-8)
    h = 1e-4
    for t in (0.2, 0.5, 0.8):
        def along(time: float) -> torch.Tensor:
            return (1 - time) * mean + (x - (1 - start) * mean) @ (root(time, 0.5) @ root(start, -0.5)).T

        difference = (along(t + h) - along(t - h)) / (2 * h)
        torch.testing.assert_close(difference, flow.velocity(along(t), t), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("name", ["2d", "64d"])
def test_vp_converted_flow_matches_the_vp_mixture(name, flow2, flow64):
    """The converted velocity ū_s (Eqs. 10–11) is the exact VP-path velocity of the same data: its VP Tweedie and
    score equal the closed forms of the mixture diffused along ᾱ, σ̄, and its Tweedie at s equals the linear
    Tweedie at t_s of x̄/c_s."""
    flow = flow2 if name == "2d" else flow64
    path, linear = VPInterpolant(), LinearInterpolant()
    converted, exact = VPConvertedFlow(flow, path), vp_mixture(flow)
    assert (converted.dim, converted.device, converted.dtype) == (flow.dim, flow.device, flow.dtype)
    for s in (0.05, 0.3, 0.6, 0.95):
        x_bar = exact.sample_marginal(32, s, torch.Generator().manual_seed(6))
        u_bar = converted.velocity(x_bar, s)
        x0 = path.tweedie(x_bar, u_bar, s)
        torch.testing.assert_close(x0, exact.predict_x0(x_bar, s), rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(path.score(x_bar, u_bar, s), exact.score(x_bar, s), rtol=1e-8, atol=1e-8)
        t_s, c_s = path.linear_time(s), path.alpha(s) + path.sigma(s)
        x = x_bar / c_s
        torch.testing.assert_close(x0, linear.tweedie(x, flow.velocity(x, t_s), t_s), rtol=1e-10, atol=1e-10)
        # ū = E[ᾱ' x0 + σ̄' ε | x̄] with ε̂ = (x̄ − ᾱ x̂0)/σ̄
        eps = (x_bar - path.alpha(s) * x0) / path.sigma(s)
        torch.testing.assert_close(u_bar, path.d_alpha(s) * x0 + path.d_sigma(s) * eps, rtol=1e-9, atol=1e-9)
    # a per-row VP time vector
    s = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    x_bar = exact.sample_marginal(3, 0.5, torch.Generator().manual_seed(7))
    rows = torch.cat([converted.velocity(x_bar[i : i + 1], float(s[i])) for i in range(3)])
    torch.testing.assert_close(converted.velocity(x_bar, s), rows, rtol=1e-12, atol=1e-12)


def test_score_and_tweedie_are_consistent_on_any_path():
    """For any interpolant, x = α x̂0 + σ ε̂ with ε̂ = −σ ∇log p, and u = α̇ x̂0 + σ̇ ε̂, for arbitrary (x, u)."""
    generator = np.random.default_rng(8)
    x, u = (torch.from_numpy(generator.standard_normal((5, 3))) for _ in range(2))
    for path in (LinearInterpolant(), VPInterpolant()):
        for t in (0.2, 0.7):
            x0, score = path.tweedie(x, u, t), path.score(x, u, t)
            eps = -path.sigma(t) * score
            torch.testing.assert_close(path.alpha(t) * x0 + path.sigma(t) * eps, x, rtol=1e-10, atol=1e-10)
            torch.testing.assert_close(path.d_alpha(t) * x0 + path.d_sigma(t) * eps, u, rtol=1e-10, atol=1e-10)
