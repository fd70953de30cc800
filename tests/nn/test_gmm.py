import pytest
import torch

from adaptstep.nn.denoisers import CountingDenoiser, noise_from_x0, score_from_x0
from adaptstep.nn.gmm import GaussianMixture, gmm_2d, gmm_64d
from adaptstep.nn.schedules import CosineVPSchedule, LinearVPSchedule

F64 = torch.float64


def anisotropic_mixture() -> GaussianMixture:
    """Three components in 3-D with full, differently scaled covariances."""
    generator = torch.Generator().manual_seed(3)
    factors = torch.randn(3, 3, 3, generator=generator, dtype=F64)
    covariances = factors @ factors.transpose(1, 2) * torch.tensor([0.02, 0.3, 1.0], dtype=F64)[:, None, None]
    covariances = covariances + 1e-3 * torch.eye(3, dtype=F64)
    means = torch.tensor([[1.0, 0.0, -1.0], [-2.0, 1.0, 0.5], [0.0, -1.5, 2.0]], dtype=F64)
    return GaussianMixture([0.2, 0.5, 0.3], means, covariances, CosineVPSchedule(), device="cpu")


MIXTURES = [anisotropic_mixture(), gmm_2d(device="cpu"), gmm_64d(device="cpu", components=6)]


@pytest.mark.parametrize("mixture", MIXTURES, ids=["3d", "2d", "64d"])
@pytest.mark.parametrize("per_sample_time", [False, True])
def test_score_is_the_gradient_of_log_prob_and_x0_is_tweedie(mixture, per_sample_time):
    schedule = mixture.schedule
    x = mixture.sample_marginal(7, 0.4, torch.Generator().manual_seed(0)).requires_grad_(True)
    t = torch.linspace(0.01, 0.9, 7, dtype=F64) if per_sample_time else torch.tensor(0.2, dtype=F64)
    (gradient,) = torch.autograd.grad(mixture.log_prob(x, t).sum(), x)
    score = mixture.score(x, t)
    assert torch.allclose(score, gradient, rtol=1e-10, atol=1e-10)
    alpha = schedule.alpha(t).reshape(-1, 1)
    sigma = schedule.sigma(t).reshape(-1, 1)
    x0 = mixture.predict_x0(x, t)
    assert torch.allclose(x0, (x + sigma**2 * score) / alpha, rtol=1e-10, atol=1e-10)
    assert torch.allclose(score_from_x0(schedule, x, x0, t), score, rtol=1e-9, atol=1e-9)
    assert torch.allclose(noise_from_x0(schedule, x, x0, t), -sigma * score, rtol=1e-9, atol=1e-9)


def test_single_gaussian_log_prob_matches_torch_distributions():
    covariance = torch.tensor([[0.5, 0.2], [0.2, 0.3]], dtype=F64)
    mean = torch.tensor([1.0, -1.0], dtype=F64)
    mixture = GaussianMixture([1.0], mean[None], covariance[None], LinearVPSchedule(), device="cpu")
    t = torch.tensor(0.3, dtype=F64)
    alpha, sigma = mixture.schedule.alpha(t), mixture.schedule.sigma(t)
    marginal = torch.distributions.MultivariateNormal(alpha * mean, alpha**2 * covariance + sigma**2 * torch.eye(2, dtype=F64))
    x = torch.randn(5, 2, dtype=F64, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(mixture.log_prob(x, t), marginal.log_prob(x), rtol=1e-12, atol=1e-12)


def test_sample_marginal_matches_the_analytic_mean_and_covariance():
    mixture = anisotropic_mixture()
    t, n = 0.3, 200_000
    samples = mixture.sample_marginal(n, t, torch.Generator().manual_seed(0))
    assert samples.shape == (n, 3) and samples.dtype == F64
    covariance = mixture.covariance(t)
    scale = torch.sqrt(torch.diagonal(covariance))
    assert torch.all((samples.mean(0) - mixture.mean(t)).abs() < 5 * scale / n**0.5)
    assert torch.allclose(torch.cov(samples.T), covariance, atol=0.02 * float(covariance.abs().max()), rtol=0)


def test_sample_data_follows_the_weights_and_is_reproducible():
    mixture = gmm_2d(device="cpu", components=4, std=0.05)
    first = mixture.sample_data(40_000, torch.Generator().manual_seed(5))
    assert torch.equal(first, mixture.sample_data(40_000, torch.Generator().manual_seed(5)))
    nearest = torch.cdist(first, mixture.means).argmin(dim=1)
    fractions = torch.bincount(nearest, minlength=4).double() / len(first)
    assert torch.allclose(fractions, torch.full((4,), 0.25, dtype=F64), atol=0.01)


def test_factories_are_reproducible_and_documented_shapes():
    first, second, other = gmm_64d(seed=1, device="cpu"), gmm_64d(seed=1, device="cpu"), gmm_64d(seed=2, device="cpu")
    assert (first.dim, first.components) == (64, 16)
    assert torch.equal(first.means, second.means) and torch.equal(first.covariances, second.covariances)
    assert not torch.equal(first.means, other.means)
    assert float(first.weights.sum()) == pytest.approx(1.0, abs=1e-15)
    ring = gmm_2d(device="cpu")
    assert ring.components == 8 and torch.allclose(ring.means.norm(dim=1), torch.full((8,), 2.0, dtype=F64))


def test_weights_are_normalised():
    mixture = GaussianMixture([2.0, 6.0], torch.zeros(2, 1), torch.ones(2, 1, 1), LinearVPSchedule(), device="cpu")
    assert mixture.weights.tolist() == [0.25, 0.75]


def test_counting_denoiser_counts_one_per_batched_call():
    counter = CountingDenoiser(gmm_2d(device="cpu"))
    x = torch.zeros(32, 2, dtype=F64)
    counter.predict_x0(x, torch.tensor(0.5, dtype=F64))
    counter.predict_x0(x, torch.full((32,), 0.5, dtype=F64))
    assert counter.nfe == 2
    counter.reset()
    assert counter.nfe == 0


EYE = torch.eye(2, dtype=F64)


@pytest.mark.parametrize(
    ("weights", "means", "covariances", "match"),
    [
        ([0.5, -0.5], torch.zeros(2, 2), EYE.expand(2, 2, 2), "weights must be finite and > 0"),
        ([[1.0]], torch.zeros(1, 2), EYE[None], "weights must have shape"),
        ([0.5, 0.5], torch.zeros(3, 2), EYE.expand(2, 2, 2), "means must have shape"),
        ([0.5, 0.5], torch.zeros(2, 2), EYE.expand(3, 2, 2), "covariances must have shape"),
        ([1.0], torch.zeros(1, 2), torch.tensor([[[1.0, 0.5], [0.0, 1.0]]]), "symmetric"),
        ([1.0], torch.zeros(1, 2), torch.tensor([[[1.0, 2.0], [2.0, 1.0]]]), "positive definite"),
        ([1.0], torch.tensor([[float("nan"), 0.0]]), EYE[None], "finite"),
    ],
)
def test_bad_mixture_inputs_raise(weights, means, covariances, match):
    with pytest.raises(ValueError, match=match):
        GaussianMixture(weights, means, covariances, LinearVPSchedule(), device="cpu")


def test_bad_query_shapes_raise():
    mixture = gmm_2d(device="cpu")
    with pytest.raises(ValueError, match="x must have shape"):
        mixture.predict_x0(torch.zeros(4, 3, dtype=F64), 0.5)
    with pytest.raises(ValueError, match="t must be 0-d or of shape"):
        mixture.predict_x0(torch.zeros(4, 2, dtype=F64), torch.full((3,), 0.5, dtype=F64))
    with pytest.raises(ValueError, match="n must be"):
        mixture.sample_data(0)
