import math

import pytest
import torch

from adaptstep.diffusion.metrics import frechet_distance, mmd_rbf, sliced_wasserstein2
from adaptstep.diffusion.networks import DenoiserConfig, NeuralDenoiser
from adaptstep.diffusion.quality import (
    METRICS,
    REFERENCE_SIZE,
    DistributionMetrics,
    distribution_metrics,
)
from adaptstep.diffusion.training import save_denoiser
from adaptstep.nn.data import load_dataset
from adaptstep.nn.gmm import gmm_2d, gmm_64d
from adaptstep.nn.solvers import sample
from adaptstep.nn.timesteps import logsnr_uniform

BATCH = 128


@pytest.mark.parametrize("name, mixture", [("gmm-2d", gmm_2d), ("gmm-64d", gmm_64d)])
def test_exact_samples_beat_a_wrong_gaussian_and_a_two_step_ddim_batch(name, mixture):
    metrics = distribution_metrics(name)
    gmm = mixture(device="cpu")
    t_min = gmm.schedule.t_min
    assert metrics.reference.shape == (REFERENCE_SIZE, gmm.dim)
    generator = torch.Generator().manual_seed(1)
    exact = metrics(gmm.sample_marginal(BATCH, t_min, generator))
    # moment-matched Gaussian of p_{t_min}, shifted by 0.5 per coordinate and with twice the covariance
    factor = torch.linalg.cholesky(2 * gmm.covariance(t_min))
    wrong = gmm.mean(t_min) + 0.5 + torch.randn(BATCH, gmm.dim, generator=generator, dtype=torch.float64) @ factor.T
    x_T = gmm.sample_marginal(BATCH, gmm.schedule.t_max, generator)
    ddim, nfe = sample(gmm, gmm.schedule, x_T, logsnr_uniform(gmm.schedule, 2, device="cpu"), solver="ddim")
    assert nfe == 2
    assert exact["frechet"] is None and set(exact) == set(METRICS)
    for other in (metrics(wrong), metrics(ddim)):
        assert other["frechet"] is None
        assert exact["sw2"] < 0.6 * other["sw2"]  # measured ratios 0.17 to 0.47
        assert exact["mmd"] < 0.2 * other["mmd"]  # measured ≤ 0.05


@pytest.mark.parametrize("n", [40, 300, 700])
def test_precomputed_metrics_equal_those_of_the_metrics_module(n):
    generator = torch.Generator().manual_seed(4)
    reference = torch.randn(300, 3, generator=generator, dtype=torch.float64)
    samples = 1.2 * torch.randn(n, 3, generator=generator, dtype=torch.float64) + 0.3
    metrics = DistributionMetrics(reference, projections=64, projection_seed=9)
    expected_sw2 = sliced_wasserstein2(samples, reference, 64, torch.Generator().manual_seed(9))
    assert metrics.sliced_wasserstein2(samples) == pytest.approx(expected_sw2, rel=1e-12)
    assert metrics.sliced_wasserstein2(samples) == pytest.approx(expected_sw2, rel=1e-12)  # cached quantiles
    assert metrics.mmd(samples) == pytest.approx(mmd_rbf(samples, reference, metrics.bandwidth), rel=1e-12, abs=1e-15)


def test_metrics_are_deterministic_and_the_reference_is_fixed():
    metrics = distribution_metrics("gmm-2d")
    x = gmm_2d(device="cpu").sample_marginal(BATCH, 1e-3, torch.Generator().manual_seed(3))
    first = metrics(x)
    assert metrics(x.clone()) == first and metrics(x.float()) == metrics(x.float())
    assert distribution_metrics("gmm-2d") is metrics  # cached per model name
    distribution_metrics.cache_clear()
    rebuilt = distribution_metrics("gmm-2d")
    assert rebuilt is not metrics and torch.equal(rebuilt.reference, metrics.reference)
    assert rebuilt.bandwidth == metrics.bandwidth and rebuilt(x) == first


def test_digits_data_beats_noise_on_every_metric():
    metrics = distribution_metrics("digits")
    assert metrics.reference.shape == (360, 64) and metrics.reference.abs().max() == 1.0
    digits, _ = load_dataset("digits", n=BATCH, seed=0)  # training images, none of them in the reference
    noise = torch.randn(BATCH, 64, generator=torch.Generator().manual_seed(0))
    data_scores, noise_scores = metrics(digits), metrics(noise)
    features = metrics.classifier.features
    assert data_scores["frechet"] == pytest.approx(frechet_distance(features(digits), features(metrics.reference)))
    assert data_scores["frechet"] < 0.05 * noise_scores["frechet"]
    assert data_scores["sw2"] < 0.5 * noise_scores["sw2"] and data_scores["mmd"] < 0.1 * noise_scores["mmd"]


def test_a_checkpoint_is_scored_against_its_training_set(tmp_path):
    model = NeuralDenoiser(DenoiserConfig(dim=2, width=8, depth=1))
    path = save_denoiser(model, tmp_path / "denoiser.pt", {"data": "two-moons"})
    metrics = distribution_metrics(str(path))
    assert torch.equal(metrics.reference, load_dataset("two-moons", n=REFERENCE_SIZE, seed=2**31 - 1,
                                                       split="held-out")[0].double())
    moons, _ = load_dataset("two-moons", n=BATCH, seed=5)
    scores = metrics(moons)
    assert scores["frechet"] is None and scores["sw2"] < metrics(torch.randn(BATCH, 2))["sw2"]
    unnamed = save_denoiser(model, tmp_path / "unnamed.pt", {})
    with pytest.raises(ValueError, match=r"'data' .* must be one of \['digits', 'two-moons', 'checkerboard'\]"):
        distribution_metrics(str(unnamed))


def test_bad_input_is_rejected_and_non_finite_samples_score_infinity():
    with pytest.raises(ValueError, match=r"model must be one of \['gmm-2d', 'gmm-64d', 'digits'\]"):
        distribution_metrics("mnist")
    metrics = DistributionMetrics(torch.randn(50, 3, generator=torch.Generator().manual_seed(0)))
    with pytest.raises(ValueError, match=r"samples must have shape \(n, 3\)"):
        metrics(torch.zeros(10, 2))
    with pytest.raises(ValueError, match="reference"):
        DistributionMetrics(torch.zeros(1, 3))
    broken = torch.zeros(10, 3)
    broken[4, 1] = math.nan
    assert metrics(broken) == {"sw2": math.inf, "mmd": math.inf, "frechet": None}
