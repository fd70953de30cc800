"""FlowSampler: its grids, its single steps, its argument checks, and that every mode keeps the marginals."""

import math

import numpy as np
import pytest
import torch

from adaptstep.flow.interpolants import LinearInterpolant, VPInterpolant
from adaptstep.flow.sampler import MODES, TIME_GRIDS, FlowSampler


def statistics(flow, x0: torch.Tensor) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Named statistics of samples as (values, standard errors): mean radius, radius std, mean log p_data,
    per-coordinate means and stds, and the occupancy of each of the 8 ring modes (nearest mode by angle)."""
    n = len(x0)
    x = x0.numpy()
    radius = np.linalg.norm(x, axis=1)
    log_p = flow.log_prob(x0).numpy()
    mode = np.round(np.arctan2(x[:, 1], x[:, 0]) / (2 * np.pi / 8)).astype(int) % 8
    occupancy = np.stack([mode == k for k in range(8)], axis=1).astype(float)

    def mean(v):
        return v.mean(0), v.std(0, ddof=1) / math.sqrt(n)

    def std(v):  # delta method: Var(s) ≈ (μ4 − σ⁴)/(4σ²n)
        centred = v - v.mean(0)
        variance, fourth = (centred**2).mean(0), (centred**4).mean(0)
        return np.sqrt(variance), np.sqrt((fourth - variance**2) / (4 * variance * n))

    return {"mean radius": mean(radius), "radius std": std(radius), "mean log p_data": mean(log_p),
            "coordinate means": mean(x), "coordinate stds": std(x), "mode occupancy": mean(occupancy)}


def test_every_mode_keeps_the_marginals(flow):
    """With 200 steps, ode, linear-sde and vp-sde (each from its own noise, n = 4000) and the exact reference
    x̂0(x_t_end) with x_t_end ~ p_t_end (the generation's output is x̂0 at t_end = 0.02) agree on every statistic
    (mean radius, radius std, mean log p_data, per-coordinate mean and std, occupancy of each of the 8 modes):
    every pairwise difference is within 4 combined standard errors (e.g. mean radius: SE ≈ 0.0032 per sample
    set, tolerance ≈ 0.018; mode occupancy: SE ≈ 0.0052, tolerance ≈ 0.03). The mode occupancies are also each
    within 4 SE of 1/8."""
    n = 4000
    reference = flow.mixture.sample_marginal(n, 0.02, torch.Generator().manual_seed(0))
    samples = {"data": flow.predict_x0(reference, 0.02)}
    for index, mode in enumerate(MODES):
        sampler = FlowSampler(flow, mode=mode, steps=200)
        noise = torch.from_numpy(np.random.default_rng(10 + index).standard_normal((n, 2)))
        samples[mode] = sampler.generate(noise, np.random.default_rng(20 + index))
    stats = {name: statistics(flow, x0) for name, x0 in samples.items()}
    names = list(stats)
    for i, first in enumerate(names):
        for statistic, (values, errors) in stats[first].items():
            if statistic == "mode occupancy":
                assert np.all(np.abs(values - 1 / 8) < 4 * errors), (first, values)
            for second in names[i + 1 :]:
                other, other_errors = stats[second][statistic]
                z = np.abs(values - other) / np.sqrt(errors**2 + other_errors**2)
                assert np.all(z < 4), (first, second, statistic, values, other, z)


def test_the_sde_mixes_and_the_ode_does_not(flow):
    """From one fixed initial noise, the ODE gives one sample whatever the SDE generator; the SDEs spread over
    several modes (g = 3t² injects noise), and diffusion_norm = 0 turns an SDE mode into the ODE."""
    noise = torch.from_numpy(np.random.default_rng(0).standard_normal((1, 2))).expand(400, 2)
    ode = FlowSampler(flow, mode="ode", steps=20).generate(noise, np.random.default_rng(1))
    assert float((ode - ode[0]).abs().max()) == 0.0
    for mode in ("linear-sde", "vp-sde"):
        x0 = FlowSampler(flow, mode=mode, steps=20).generate(noise, np.random.default_rng(1))
        modes = np.round(np.arctan2(x0[:, 1].numpy(), x0[:, 0].numpy()) / (np.pi / 4)).astype(int) % 8
        assert len(np.unique(modes)) >= 4, (mode, np.bincount(modes))
    quiet = FlowSampler(flow, mode="linear-sde", steps=20, diffusion_norm=0.0)
    torch.testing.assert_close(quiet.generate(noise[:3], np.random.default_rng(2)), ode[:3], rtol=0, atol=0)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("time_grid", TIME_GRIDS)
def test_ten_step_sampler_is_finite_and_grid_decreases_from_one(flow, mode, time_grid):
    sampler = FlowSampler(flow, mode=mode, steps=10, time_grid=time_grid, t_end=0.05)
    assert sampler.times.shape == sampler.linear_times.shape == (11,)
    assert sampler.times[0] == 1.0 and np.all(np.diff(sampler.times) < 0)
    assert np.all(np.diff(sampler.linear_times) < 0)
    assert sampler.linear_times[-1] == pytest.approx(0.05, abs=1e-10)
    start = float(VPInterpolant().linear_time(1.0)) if mode == "vp-sde" else 1.0
    assert sampler.linear_times[0] == pytest.approx(start, rel=1e-15)
    noise = torch.from_numpy(np.random.default_rng(3).standard_normal((64, 2)))
    x0 = sampler.generate(noise, np.random.default_rng(4))
    assert x0.shape == (64, 2) and x0.dtype == torch.float64 and bool(torch.isfinite(x0).all())
    if time_grid == "uniform":  # (the exp grid's last step, t ≈ 0.46 → 0.05, is too coarse for this)
        assert abs(float(x0.norm(dim=1).median()) - 2.0) < 0.1  # 10 steps already land near the ring of radius 2


def test_exp_grid_is_the_square_root_warp(flow):
    """The ``exp`` grid is t' = √(1 − (1 − t)²) of the uniform grid from 1 to 0, affinely mapped onto [t_end, 1]
    (on [s_end, 1] in VP time, s_end the VP time of t_end)."""
    steps, t_end = 10, 0.03
    uniform = np.linspace(1.0, 0.0, steps + 1)
    warp = np.sqrt(1.0 - (1.0 - uniform) ** 2)
    for mode in ("ode", "linear-sde"):
        sampler = FlowSampler(flow, mode=mode, steps=steps, t_end=t_end, time_grid="exp")
        np.testing.assert_allclose(sampler.times, t_end + (1 - t_end) * warp, rtol=0, atol=1e-15)
        uniform_sampler = FlowSampler(flow, mode=mode, steps=steps, t_end=t_end)
        np.testing.assert_allclose(uniform_sampler.times, np.linspace(1.0, t_end, steps + 1), rtol=0, atol=1e-15)
    s_end = VPInterpolant().time_of_linear(t_end)
    vp = FlowSampler(flow, mode="vp-sde", steps=steps, t_end=t_end, time_grid="exp")
    np.testing.assert_allclose(vp.times, s_end + (1 - s_end) * warp, rtol=0, atol=1e-12)
    np.testing.assert_allclose(vp.linear_times, VPInterpolant().linear_time(torch.as_tensor(vp.times)).numpy())
    vp_uniform = FlowSampler(flow, mode="vp-sde", steps=steps, t_end=t_end)
    np.testing.assert_allclose(vp_uniform.times, np.linspace(1.0, s_end, steps + 1), rtol=0, atol=1e-15)
    # the warp spends its steps at high noise: the first step is the shortest
    assert np.all(np.diff(-np.diff(warp)) > 0)


def test_single_steps_follow_the_formulas(flow):
    """initial = σ(1)·ε; evaluate gives the velocity and the path's Tweedie (= the mixture's x̂0); propose is
    Euler for the ODE and Euler–Maruyama x − uΔ + ½g²·score·Δ + g√Δ·z with g = c·t² for the SDEs."""
    noise = torch.from_numpy(np.random.default_rng(5).standard_normal((6, 2)))
    z = torch.from_numpy(np.random.default_rng(6).standard_normal((6, 2)))
    for mode in MODES:
        sampler = FlowSampler(flow, mode=mode, steps=5, diffusion_norm=2.0)
        path = VPInterpolant() if mode == "vp-sde" else LinearInterpolant()
        x = sampler.initial(noise)
        torch.testing.assert_close(x, noise * float(path.sigma(1.0)), rtol=0, atol=0)
        step = 2
        x = x * 0.7
        time, delta = sampler.times[step], sampler.times[step] - sampler.times[step + 1]
        velocity, x0 = sampler.evaluate(x, step)
        if mode == "vp-sde":
            c = path.alpha(time) + path.sigma(time)
            torch.testing.assert_close(x0, flow.predict_x0(x / c, path.linear_time(time)), rtol=1e-10, atol=1e-10)
        else:
            torch.testing.assert_close(velocity, flow.velocity(x, time))
            torch.testing.assert_close(x0, flow.predict_x0(x, time))
        g = 0.0 if mode == "ode" else 2.0 * time**2
        assert sampler.diffusion(step) == pytest.approx(g, rel=1e-15, abs=0)
        expected = x - velocity * delta + 0.5 * g**2 * delta * path.score(x, velocity, time) + g * math.sqrt(delta) * z
        torch.testing.assert_close(sampler.propose(x, velocity, step, z), expected, rtol=1e-12, atol=1e-12)
        # one state broadcast against many noises (how search draws proposals)
        many = sampler.propose(x[:1], velocity[:1], step, z)
        torch.testing.assert_close(many, expected[:1] - g * math.sqrt(delta) * (z[:1] - z), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("options", "parameter"), [
    ({"mode": "sde"}, "mode"),
    ({"mode": "ODE"}, "mode"),
    ({"time_grid": "log"}, "time_grid"),
    ({"steps": 0}, "steps"),
    ({"steps": 2.5}, "steps"),
    ({"steps": "10"}, "steps"),
    ({"t_end": 0.0}, "t_end"),
    ({"t_end": 0.5}, "t_end"),
    ({"t_end": -0.1}, "t_end"),
    ({"t_end": float("nan")}, "t_end"),
    ({"diffusion_norm": -1.0}, "diffusion_norm"),
    ({"diffusion_norm": float("inf")}, "diffusion_norm"),
    ({"diffusion_norm": float("nan")}, "diffusion_norm"),
])
def test_bad_arguments_name_the_parameter(flow, options, parameter):
    with pytest.raises(ValueError, match=f"^{parameter} must"):
        FlowSampler(flow, **options)
