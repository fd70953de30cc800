import numpy as np
import pytest
import torch

from adaptstep.flow.particle_methods import (
    _noise_forward,
    best_of_n,
    generators,
    paths_plan,
    search_over_paths,
    smc,
)
from adaptstep.flow.sampler import MODES, FlowSampler

METHODS = {"best_of_n": best_of_n, "search_over_paths": search_over_paths, "smc": smc}


class Counting:
    """A sampler proxy counting the rows passed to ``evaluate`` (NFE), and a verifier counting scored rows."""

    def __init__(self, sampler, verifier):
        self.sampler, self.verifier, self.nfe, self.calls = sampler, verifier, 0, 0

    def __getattr__(self, name):
        return getattr(self.sampler, name)

    def evaluate(self, x, step):
        self.nfe += len(x)
        return self.sampler.evaluate(x, step)

    def score(self, x0):
        self.calls += len(x0)
        return self.verifier(x0)


@pytest.mark.parametrize("mode", MODES)
def test_nfe_and_verifier_calls_are_counted_exactly(flow, verifier, mode):
    counting = Counting(FlowSampler(flow, mode=mode, steps=10), verifier)
    seeds = [0, 1]
    for budget in (22, 50, 97, 200):
        for name, method in METHODS.items():
            counting.nfe = counting.calls = 0
            result = method(counting, counting.score, budget, seeds)
            assert result.method == name and result.x0.shape == (2, 2) and result.reward.shape == (2,)
            assert counting.nfe == result.nfe.sum() and counting.calls == result.verifier_calls.sum()
            assert np.all(result.nfe <= budget) and np.all(result.nfe == result.nfe[0])
            n = budget // 11
            if name == "best_of_n":
                assert result.nfe[0] == 11 * n and result.verifier_calls[0] == n
            elif name == "smc":
                assert result.nfe[0] == result.verifier_calls[0] == 11 * n
            else:
                start, chains, loops = paths_plan(10, budget, 2, 5, 2, 3)
                assert result.nfe[0] == chains * (start + 1) + sum(10 * (b - a + 1) for a, b in loops)
                assert budget - result.nfe[0] < start + 1  # the leftover buys no further chain
                assert result.trace["loops"][0] == len(loops) and result.trace["particles"][0] == chains


def test_paths_plan_fits_the_paper_budgets():
    assert paths_plan(10, 100, 2, 5, 2, 3) == (8, 2, [(6, 9), (7, 10)])
    assert paths_plan(10, 50, 2, 5, 2, 3) == (10, 4, [])  # no loop fits: best-of-4
    previous = 11
    for budget in (50, 100, 300, 500, 1000):
        start, chains, loops = paths_plan(10, budget, 2, 5, 2, 3)
        cost = chains * (start + 1) + sum(10 * (b - a + 1) for a, b in loops)
        assert cost <= budget < cost + start + 1 and start <= previous and chains >= 2
        assert all(b - a == 3 or b == 10 for a, b in loops) and (not loops or loops[-1][1] == 10)
        previous = start


@pytest.mark.parametrize("mode", ["linear-sde", "vp-sde"])
def test_results_are_reproducible_and_independent_of_the_batch(flow, verifier, mode):
    sampler = FlowSampler(flow, mode=mode, steps=6)
    for method in METHODS.values():
        batch = method(sampler, verifier, 60, [4, 9, 17])
        again = method(sampler, verifier, 60, [4, 9, 17])
        alone = method(sampler, verifier, 60, [9])
        torch.testing.assert_close(batch.x0, again.x0, rtol=0, atol=0)
        torch.testing.assert_close(batch.x0[1:2], alone.x0)
        np.testing.assert_allclose(batch.reward[1:2], alone.reward)
        assert batch.nfe[1] == alone.nfe[0] and batch.verifier_calls[1] == alone.verifier_calls[0]
        for key, values in batch.trace.items():
            np.testing.assert_allclose(values[1:2], alone.trace[key])
        assert not torch.allclose(batch.x0[0], batch.x0[1])


def test_best_of_n_selects_among_plain_generations(flow, verifier):
    sampler = FlowSampler(flow, mode="linear-sde", steps=10)
    result = best_of_n(sampler, verifier, 50, [3, 8])
    for g, seed in enumerate((3, 8)):
        rng = generators(seed, "best_of_n")[0]
        x0 = sampler.generate(torch.from_numpy(rng.standard_normal((4, 2))), rng)
        rewards = verifier(x0)
        torch.testing.assert_close(result.x0[g], x0[rewards.argmax()])
        assert result.reward[g] == pytest.approx(float(rewards.max()))


@pytest.mark.parametrize("potential", ["diff", "max", "rt"])
def test_smc_without_tilt_is_plain_sampling(flow, verifier, potential):
    sampler = FlowSampler(flow, mode="vp-sde", steps=10)
    result = smc(sampler, verifier, 66, [5, 6], lam=0.0, potential=potential)
    assert np.all(result.trace["resampled"] == 0) and np.allclose(result.trace["ess"], 6)
    for g, seed in enumerate((5, 6)):
        rng = generators(seed, "smc", 2)[0]
        x0 = sampler.generate(torch.from_numpy(rng.standard_normal((6, 2))), rng)
        torch.testing.assert_close(result.x0[g], x0[verifier(x0).argmax()])


def test_more_budget_and_search_raise_the_reward(flow, verifier):
    """Over 64 seeds on the mode-0 task (a mode of weight 1/8, missed with probability (7/8)^N by N plain
    samples, each miss scoring about −50): BoN with 18 samples beats 2 (a gap of ~25 in mean reward against a
    standard error of ~4); SMC's tilt beats plain sampling (SMC with λ = 0) with 5 particles; Search over Paths
    at 200 NFE (5 initial chains, 4 loops) beats best-of-5."""
    sampler, seeds = FlowSampler(flow, mode="linear-sde", steps=10), list(range(64))
    large, small = best_of_n(sampler, verifier, 200, seeds), best_of_n(sampler, verifier, 22, seeds)
    assert large.reward.mean() > small.reward.mean() + 10
    tilted, plain = smc(sampler, verifier, 55, seeds), smc(sampler, verifier, 55, seeds, lam=0.0)
    assert tilted.reward.mean() > plain.reward.mean() + 10 and tilted.trace["resampled"].mean() >= 1
    paths = search_over_paths(sampler, verifier, 200, seeds)
    assert paths.trace["particles"][0] == 5 and paths.trace["loops"][0] == 4
    assert paths.reward.mean() > best_of_n(sampler, verifier, 55, seeds).reward.mean() + 10


@pytest.mark.parametrize("mode", ["linear-sde", "vp-sde"])
def test_forward_kernel_noises_to_the_later_marginal(flow, mode):
    """From x_t = α_t x0 + σ_t ε the kernel gives α_{t'} x0 + σ_{t'} ε' in law for t' > t."""
    sampler = FlowSampler(flow, mode=mode, steps=10)
    path, x0 = sampler.path, torch.tensor([[1.5, -0.5]], dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    x = float(path.alpha(sampler.times[7])) * x0 + float(path.sigma(sampler.times[7])) * torch.randn(
        40000, 2, generator=generator, dtype=torch.float64)
    noisy = _noise_forward(sampler, x, 7, 4, torch.randn(40000, 2, generator=generator, dtype=torch.float64))
    torch.testing.assert_close(noisy.mean(0), float(path.alpha(sampler.times[4])) * x0[0], atol=0.02, rtol=0)
    torch.testing.assert_close(noisy.std(0), torch.full((2,), float(path.sigma(sampler.times[4])),
                                                         dtype=torch.float64), atol=0.02, rtol=0)


def test_bad_input_is_rejected_with_the_parameter_named(flow, verifier):
    sampler = FlowSampler(flow, mode="ode", steps=10)
    for method in METHODS.values():
        with pytest.raises(ValueError, match="budget"):
            method(sampler, verifier, 10, [0])
        with pytest.raises(ValueError, match="budget"):
            method(sampler, verifier, 50.0, [0])
        with pytest.raises(ValueError, match="seeds"):
            method(sampler, verifier, 50, [])
    for method in (best_of_n, smc):
        for particles in (0, 5):
            with pytest.raises(ValueError, match="particles"):
                method(sampler, verifier, 50, [0], particles=particles)
    with pytest.raises(ValueError, match=r"potential must be one of \['diff', 'max', 'rt'\]"):
        smc(sampler, verifier, 50, [0], potential="add")
    with pytest.raises(ValueError, match="lam"):
        smc(sampler, verifier, 50, [0], lam=-1.0)
    with pytest.raises(ValueError, match="ess_threshold"):
        smc(sampler, verifier, 50, [0], ess_threshold=1.5)
    for name, value in (("beam", 0), ("width", 0), ("forward", 0), ("forward", 10), ("backward", 2)):
        with pytest.raises(ValueError, match=name):
            search_over_paths(sampler, verifier, 50, [0], **{name: value})
    with pytest.raises(ValueError, match="method"):
        generators(0, "rbf")
