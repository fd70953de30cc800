"""Verifiers (NaN policy, shapes, closed-form sub-mixture densities), tasks, and run_method's argument checks;
NaN rewards inside search never win over finite ones."""

import math

import numpy as np
import pytest
import torch

from adaptstep.flow.chains import TAG, QuotaChains, RolloverQuota, run_quota_method
from adaptstep.flow.methods import METHODS, run_method
from adaptstep.flow.sampler import FlowSampler
from adaptstep.flow.tasks import FLOW_TASKS, make_task
from adaptstep.flow.verifiers import NAN_POLICIES, Verifier, class_probability, sub_mixture_log_density


@pytest.fixture(scope="module")
def sampler(flow):
    return FlowSampler(flow, mode="vp-sde", steps=10)


def flaky(function):
    """``function`` with NaN in place of about half of the rewards (those whose x̂0 has an odd 1e4-th digit)."""

    def rewards(x0: torch.Tensor) -> torch.Tensor:
        values = function(x0)
        odd = torch.floor(x0[:, 0].abs() * 1e4) % 2 == 1
        return torch.where(odd, torch.full_like(values, torch.nan), values)

    return rewards


def test_nan_policies():
    x0 = torch.zeros(4, 2, dtype=torch.float64)
    values = torch.tensor([1.0, math.nan, -2.0, math.nan])
    raising = Verifier("my reward", lambda x: values)
    with pytest.raises(ValueError, match="verifier 'my reward' returned NaN for 2 of 4"):
        raising(x0)
    worst = Verifier("my reward", lambda x: values, nan_policy="worst")
    rewards = worst(x0)
    assert rewards.dtype == torch.float64 and rewards.shape == (4,)
    assert rewards.tolist() == [1.0, -math.inf, -2.0, -math.inf]
    assert worst.nan_count == 2
    worst(x0)
    assert worst.nan_count == 4  # counted over calls
    # ±inf is not NaN: passed through under both policies, not counted
    infinite = Verifier("inf", lambda x: torch.tensor([math.inf, -math.inf]), nan_policy="worst")
    assert infinite(x0[:2]).tolist() == [math.inf, -math.inf] and infinite.nan_count == 0
    assert Verifier("inf", lambda x: torch.tensor([math.inf, -math.inf]))(x0[:2]).tolist() == [math.inf, -math.inf]
    for policy in ("ignore", "RAISE", None):
        with pytest.raises(ValueError, match="nan_policy must be one of"):
            Verifier("r", lambda x: x[:, 0], nan_policy=policy)
    assert NAN_POLICIES == ("raise", "worst")


def test_reward_shapes():
    x0 = torch.zeros(3, 2, dtype=torch.float64)
    column = Verifier("column", lambda x: torch.ones(len(x), 1, dtype=torch.float32))
    out = column(x0)
    assert out.shape == (3,) and out.dtype == torch.float64
    for wrong in (lambda x: torch.ones(2), lambda x: torch.ones(3, 2), lambda x: torch.ones(())):
        with pytest.raises(ValueError, match="verifier 'wrong' returned"):
            Verifier("wrong", wrong)(x0)
    # no gradient is tracked through a verifier
    assert not Verifier("sum", lambda x: (x * torch.ones(2, requires_grad=True)).sum(1))(x0).requires_grad


def test_sub_mixture_log_density_closed_forms(flow):
    """S = {k}: log w_k + log N(x; μ_k, 0.2²I) = log(1/8) − |x − μ_k|²/(2·0.04) − log(2π·0.04); S = all: log p_data;
    duplicated or unordered indices name the same set."""
    x = torch.from_numpy(np.random.default_rng(0).standard_normal((50, 2))) * 2
    for k in (0, 3, 7):
        mean = 2.0 * torch.tensor([math.cos(k * math.pi / 4), math.sin(k * math.pi / 4)], dtype=torch.float64)
        closed = math.log(1 / 8) - ((x - mean) ** 2).sum(1) / (2 * 0.04) - math.log(2 * math.pi * 0.04)
        torch.testing.assert_close(sub_mixture_log_density(flow, [k])(x), closed, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(sub_mixture_log_density(flow, range(8))(x), flow.log_prob(x), rtol=1e-12, atol=1e-12)
    pair = sub_mixture_log_density(flow, [0, 1])(x)
    torch.testing.assert_close(sub_mixture_log_density(flow, [1, 0, 1])(x), pair)
    torch.testing.assert_close(
        pair, torch.logaddexp(sub_mixture_log_density(flow, [0])(x), sub_mixture_log_density(flow, [1])(x)))
    for bad in ([], [-1], [8], [0, 9]):
        with pytest.raises(ValueError, match="components must be indices in"):
            sub_mixture_log_density(flow, bad)


def test_class_probability():
    torch.manual_seed(0)
    classifier = torch.nn.Linear(64, 10)
    x0 = torch.randn(5, 64, dtype=torch.float64)
    probabilities = torch.stack([class_probability(classifier, target)(x0) for target in range(10)], dim=1)
    assert probabilities.dtype == torch.float64 and probabilities.shape == (5, 10)
    torch.testing.assert_close(probabilities.sum(1), torch.ones(5, dtype=torch.float64))
    with torch.no_grad():
        torch.testing.assert_close(probabilities[:, 3], torch.softmax(classifier(x0.float()), 1)[:, 3].double())
    for bad in (-1, 10, 3.0, "3", None):
        with pytest.raises(ValueError, match="target must be"):
            class_probability(classifier, bad)


def test_gmm_tasks():
    """gmm-2d rewards mode 0 and gmm-2d-compositional mode 1 (the only mode both upper and right-hand); the held-out
    verifier is log p_data. Unknown task names raise."""
    single = make_task("gmm-2d", device="cpu")
    means = single.flow.mixture.means
    assert int(single.verifier(means).argmax()) == 0
    torch.testing.assert_close(single.heldout(means), single.flow.log_prob(means))
    both = make_task("gmm-2d-compositional", nan_policy="worst", device="cpu")
    rewards = both.verifier(means)
    assert int(rewards.argmax()) == 1 and both.verifier.nan_policy == both.heldout.nan_policy == "worst"
    upper, right = sub_mixture_log_density(both.flow, [1, 2, 3]), sub_mixture_log_density(both.flow, [7, 0, 1])
    torch.testing.assert_close(rewards, upper(means) + right(means))
    assert set(FLOW_TASKS) == {"gmm-2d", "gmm-2d-compositional", "gmm-64d-compositional", "digits"}
    for bad in ("nope", "GMM-2D", ""):
        with pytest.raises(ValueError, match="task must be one of"):
            make_task(bad, device="cpu")


def test_gmm_64d_compositional_rewards_component_4_and_counts_wrong_modes():
    task = make_task("gmm-64d-compositional", device="cpu")
    means = task.flow.mixture.means
    assert int(task.verifier(means).argmax()) == 4 and task.target_modes == (4,)
    np.testing.assert_array_equal(task.wrong_modes(means), (np.arange(16) != 4).astype(float))
    assert np.isnan(make_task("digits", device="cpu").wrong_modes(torch.zeros(2, 64))).all()
    two = make_task("gmm-2d-compositional", device="cpu")
    np.testing.assert_array_equal(two.wrong_modes(two.flow.mixture.means), (np.arange(8) != 1).astype(float))


def test_run_method_rejects_unknown_methods_and_options(flow, sampler):
    verifier = Verifier("mode0", sub_mixture_log_density(flow, [0]))
    for bad in ("nope", "RBF", "best_of_n"):
        with pytest.raises(ValueError, match="method must be one of"):
            run_method(bad, sampler, verifier, 50, [0])
    for name in METHODS:
        with pytest.raises(ValueError, match=f"options of method '{name}' must be among"):
            run_method(name, sampler, verifier, 50, [0], no_such_option=1)
    with pytest.raises(ValueError, match="init_fraction"):
        run_method("svdd", sampler, verifier, 50, [0], init_fraction=0.2)  # an rbf-only option

    result = run_method("rbf", sampler, verifier, 50, [0, 1], init_fraction=0.2, chains=1)
    assert result.method == "rbf" and np.all(result.nfe == 50)
    assert np.all(result.trace["quotas"][:, 0, 0] == 10)  # K0 = round(0.2 · 50)


def test_a_type_error_inside_a_method_is_not_reported_as_a_bad_option(sampler):
    broken = Verifier("broken", lambda x0: x0[:, 0] + None)
    with pytest.raises(TypeError):
        run_method("rbf", sampler, broken, 50, [0])


def test_nan_rewards_never_win_inside_rbf(flow, sampler):
    """With nan_policy="worst" and NaN for about half the proposals, RBF completes, and at every decision a chain
    takes a finite-reward proposal whenever one was among those it scored."""
    verifier = Verifier("flaky", flaky(sub_mixture_log_density(flow, [0])), nan_policy="worst")
    blocks = []

    def recording(x0):
        rewards = verifier(x0)
        blocks.append(rewards.numpy().copy())
        return rewards

    policy = RolloverQuota()
    chains = QuotaChains(sampler, recording, 40, [(seed, TAG, 0) for seed in range(12)])
    while not chains.done:
        decision, quotas = chains.decision, policy.quotas(chains)
        chains.advance(quotas, early_accept=True)
        starts = np.concatenate([[0], np.cumsum(quotas)[:-1]])
        for chain, (start, used) in enumerate(zip(starts, chains.used[:, decision])):
            scored = blocks[-1][start : start + used]
            if np.isfinite(scored).any():
                assert np.isfinite(chains.reward[chain]), (decision, chain, scored)
    assert verifier.nan_count > 100
    assert np.isfinite(chains.reward).all() and bool(torch.isfinite(chains.x0).all())
    result = run_quota_method(sampler, verifier, 40, range(12), policy, chains=2)
    assert np.isfinite(result.reward).all() and np.all(result.nfe == 40)


@pytest.mark.parametrize("name", sorted(METHODS))
def test_nan_rewards_with_worst_policy_complete_every_method(flow, sampler, name):
    """Every method runs to the end under nan_policy="worst" with ~half NaN rewards and returns finite rewards."""
    verifier = Verifier("flaky", flaky(sub_mixture_log_density(flow, [0])), nan_policy="worst")
    result = run_method(name, sampler, verifier, 66, [0, 1, 2])
    assert verifier.nan_count > 0
    assert np.isfinite(result.reward).all() and bool(torch.isfinite(result.x0).all()) and np.all(result.nfe <= 66)
    strict = Verifier("flaky", flaky(sub_mixture_log_density(flow, [0])))
    with pytest.raises(ValueError, match="verifier 'flaky' returned NaN"):
        run_method(name, sampler, strict, 66, [0, 1, 2])
