"""QuotaChains and the quota policies (SVDD, linear schedule, RBF rollover of Kim et al. 2025, Alg. 2): budget
accounting, the rollover rule, early acceptance, reproducibility, and equality with a one-proposal-at-a-time
reference implementation of Alg. 2."""

import numpy as np
import pytest
import torch

from adaptstep.flow.chains import (
    QUOTA_POLICIES,
    TAG,
    LinearQuota,
    QuotaChains,
    RolloverQuota,
    UniformQuota,
    run_quota_method,
)
from adaptstep.flow.sampler import FlowSampler
from adaptstep.flow.verifiers import Verifier

BUDGETS = (11, 23, 50, 137)
STEPS = 10


class LinearFlow:
    """A cheap stand-in flow (u = x) for accounting tests, where only the bookkeeping matters."""

    dim, device, dtype = 2, torch.device("cpu"), torch.float64

    def velocity(self, x, t):
        return x.clone()


class Recording:
    """A verifier proxy keeping every reward block it returns."""

    def __init__(self, verifier):
        self.verifier, self.blocks = verifier, []

    def __call__(self, x0):
        rewards = self.verifier(x0)
        self.blocks.append(rewards.numpy().copy())
        return rewards


@pytest.fixture(scope="module")
def sampler(flow):
    return FlowSampler(flow, mode="vp-sde", steps=STEPS)


@pytest.fixture(scope="module")
def cheap():
    return FlowSampler(LinearFlow(), mode="linear-sde", steps=STEPS), Verifier("-|x|²", lambda x0: -(x0**2).sum(1))


def run(sampler, verifier, budget, seeds, policy, chains=1):
    return run_quota_method(sampler, verifier, budget, seeds, policy, chains=chains)


def check_rollover(quotas: np.ndarray, used: np.ndarray, budget: int, initial: int) -> None:
    """RBF's quotas of one chain, rebuilt from its trace: decision 0 is the initial best-of-K0; decision 1 gets the
    default d = (B − K0)//M; decision i in 2..M − 1 gets min(d + quota_{i−1} − used_{i−1}, max_quota_i) with
    max_quota_i = B − Σ_{j<i} used_j − (M − i) (one NFE kept per later decision); the last takes all that is left."""
    decisions = len(quotas)
    steps = decisions - 1
    default = max(1, (budget - initial) // steps)
    assert quotas[0] == used[0] == initial
    for i in range(1, decisions - 1):
        max_quota = budget - used[:i].sum() - (decisions - i - 1)
        leftover = quotas[i - 1] - used[i - 1] if i > 1 else 0
        assert quotas[i] == min(default + leftover, max_quota), (i, quotas, used)
    assert quotas[-1] == used[-1] == budget - used[:-1].sum()


@pytest.mark.parametrize("name", sorted(QUOTA_POLICIES))
def test_nfe_never_exceeds_the_budget_and_is_spent(flow, verifier, sampler, name):
    """On the 2-d ring with the vp-sde sampler, over 12 seeds and budgets 11, 23, 50, 137 (and 2 chains where
    budget // 2 ≥ steps + 1): nfe = Σ used ≤ budget (every chain spends exactly its budget // chains), 1 ≤ used ≤
    quota, early acceptance only in RBF and never at the first or last decision, and RBF's rollover holds."""
    seeds = list(range(12))
    for budget in BUDGETS:
        for chains in (1, 2):
            if budget // chains < STEPS + 1:
                continue
            policy = QUOTA_POLICIES[name]()
            result = run(sampler, verifier, budget, seeds, policy, chains)
            quotas, used, early = result.trace["quotas"], result.trace["used"], result.trace["early"]
            assert quotas.shape == used.shape == early.shape == (len(seeds), chains, STEPS + 1)
            assert np.all(result.nfe <= budget) and np.all(result.nfe == (budget // chains) * chains)
            np.testing.assert_array_equal(result.nfe, used.sum(axis=(1, 2)))
            np.testing.assert_array_equal(result.verifier_calls, result.nfe)
            assert np.all(used >= 1) and np.all(used <= quotas)
            assert not early[:, :, [0, -1]].any()
            assert early.any() == (name == "rbf")
            np.testing.assert_array_equal(used < quotas, early & (used < quotas))  # unused quota only by acceptance
            if name == "rbf":
                per_chain = budget // chains
                for q, u in zip(quotas.reshape(-1, STEPS + 1), used.reshape(-1, STEPS + 1)):
                    check_rollover(q, u, per_chain, policy.initial(per_chain, STEPS))
            assert result.x0.shape == (len(seeds), 2) and bool(torch.isfinite(result.x0).all())
            assert np.all(np.isfinite(result.reward))


def test_every_budget_is_feasible_for_every_policy(cheap):
    """Budgets 11..90 (and 137, 500, 1001): no policy ever asks for a quota outside [1, max_quota] (advance would
    raise), each chain spends its budget exactly, and RBF's rollover rule holds on every chain."""
    sampler, verifier = cheap
    for budget in [*range(STEPS + 1, 91), 137, 500, 1001]:
        for name, policy_class in QUOTA_POLICIES.items():
            policy = policy_class()
            result = run(sampler, verifier, budget, [0, 1], policy)
            assert np.all(result.nfe == budget), (name, budget)
            if name == "rbf":
                for q, u in zip(result.trace["quotas"][:, 0], result.trace["used"][:, 0]):
                    check_rollover(q, u, budget, policy.initial(budget, STEPS))


def test_svdd_and_linear_quotas_follow_their_schedules(cheap):
    """SVDD: [1, K, …, K, rest] with K = (B − 1)//M. Linear: [1, ⌊(B − 1)·w_i/Σw⌋ …, rest] with w_i = M − i + 1."""
    sampler, verifier = cheap
    for budget in BUDGETS:
        svdd = run(sampler, verifier, budget, [0], UniformQuota()).trace["quotas"][0, 0]
        per_step = (budget - 1) // STEPS
        np.testing.assert_array_equal(svdd[:-1], [1] + [per_step] * (STEPS - 1))
        linear = run(sampler, verifier, budget, [0], LinearQuota()).trace["quotas"][0, 0]
        weights = np.arange(STEPS, 0, -1) / (STEPS * (STEPS + 1) / 2)
        expected = [max(1, int((budget - 1) * w)) for w in weights[:-1]]
        np.testing.assert_array_equal(linear[:-1], [1] + expected)
        assert svdd.sum() == linear.sum() == budget
        assert np.all(np.diff(linear[1:-1]) <= 0)


def reference_rbf(sampler, verifier, budget: int, key: tuple[int, ...], init_fraction: float = 0.1):
    """Alg. 2 of Kim et al. 2025 drawn one proposal at a time (1 NFE each, the proposal j of decision i from row j
    of the generator seeded by (key, i)), with RBF's code's initial best-of-K0, rollover and final decision."""
    steps = sampler.steps
    initial = min(max(1, round(init_fraction * budget)), budget - steps)
    default = max(1, (budget - initial) // steps)
    nfe, quotas, used = 0, [], []
    best = None
    generator = np.random.default_rng(np.random.SeedSequence([*key, 0]))
    for _ in range(initial):
        x = sampler.initial(torch.from_numpy(generator.standard_normal((1, sampler.dim))))
        velocity, x0 = sampler.evaluate(x, 0)
        reward = float(verifier(x0)[0])
        nfe += 1
        if best is None or reward > best[0]:
            best = (reward, x, velocity, x0)
    r_star, x, velocity, x0 = best
    quotas.append(initial), used.append(initial)
    leftover = 0
    for decision in range(1, steps + 1):
        last = decision == steps
        quota = budget - nfe if last else min(default + leftover, budget - nfe - (steps - decision))
        generator = np.random.default_rng(np.random.SeedSequence([*key, decision]))
        best, accepted = None, None
        for j in range(quota):
            noise = torch.from_numpy(generator.standard_normal((1, sampler.dim)))
            proposal = sampler.propose(x, velocity, decision - 1, noise)
            proposal_velocity, proposal_x0 = sampler.evaluate(proposal, decision)
            reward = float(verifier(proposal_x0)[0])
            nfe += 1
            candidate = (reward, proposal, proposal_velocity, proposal_x0)
            if not last and reward > r_star:
                accepted, r_star = candidate, reward
                break
            if best is None or reward > best[0]:
                best = candidate
        chosen = accepted or best
        quotas.append(quota), used.append(j + 1)
        leftover = quota - (j + 1)
        _, x, velocity, x0 = chosen
    return x0[0], chosen[0], nfe, np.array(quotas), np.array(used)


@pytest.mark.parametrize("mode", ["vp-sde", "ode"])
def test_block_evaluation_equals_one_proposal_at_a_time(flow, verifier, mode):
    """run_quota_method with RBF (proposals drawn and scored as blocks, the tail after an accepted one discarded
    and not charged) returns exactly what Alg. 2 gives when each proposal is drawn and scored on its own."""
    sampler = FlowSampler(flow, mode=mode, steps=STEPS)
    seeds = [0, 1, 2, 3]
    for budget in (23, 50):
        result = run(sampler, verifier, budget, seeds, RolloverQuota())
        for g, seed in enumerate(seeds):
            x0, reward, nfe, quotas, used = reference_rbf(sampler, verifier, budget, (seed, TAG, 0))
            np.testing.assert_array_equal(result.trace["quotas"][g, 0], quotas)
            np.testing.assert_array_equal(result.trace["used"][g, 0], used)
            assert result.nfe[g] == nfe == budget
            assert result.reward[g] == pytest.approx(reward, rel=1e-12, abs=1e-12)
            torch.testing.assert_close(result.x0[g], x0, rtol=1e-10, atol=1e-10)


def test_early_acceptance_takes_the_first_proposal_beating_r_star(flow, verifier, sampler):
    """From the recorded reward blocks: at an RBF decision 1..M − 1 the chain takes the first proposal whose reward
    beats r* (the best accepted reward so far) and r* becomes it; if none does, it takes the argmax of all quota
    proposals and r* is unchanged (and the final decision always takes the argmax)."""
    recording = Recording(verifier)
    policy = RolloverQuota()
    chains = QuotaChains(sampler, recording, 60, [(seed, TAG, 0) for seed in range(16)])
    accepted = 0
    while not chains.done:
        decision, r_star = chains.decision, chains.best_reward.copy()
        quotas = policy.quotas(chains)
        chains.advance(quotas, early_accept=True)
        block, start = recording.blocks[-1], 0
        for chain, q in enumerate(quotas):
            rewards, used = block[start : start + q], chains.used[chain, decision]
            start += q
            beating = np.flatnonzero(rewards > r_star[chain])
            if 0 < decision < STEPS and len(beating):
                accepted += 1
                assert chains.early[chain, decision] and used == beating[0] + 1
                assert chains.reward[chain] == chains.best_reward[chain] == rewards[beating[0]] > r_star[chain]
                assert np.all(rewards[: used - 1] <= r_star[chain])
            else:
                assert not chains.early[chain, decision] and used == q
                assert chains.reward[chain] == rewards.max() == chains.step_best[chain, decision]
                assert chains.best_reward[chain] == (rewards.max() if decision == 0 else r_star[chain])
            if used < q:
                assert chains.reward[chain] > r_star[chain]
    assert accepted > 20  # early acceptance is exercised


def test_proposal_noise_does_not_depend_on_the_quota(sampler, verifier):
    """Proposal j of a decision is the same whatever the quota: with early acceptance off, quota 5 and quota 9
    score identical first 5 proposals at decision 0 and, from the same state, at decision 1."""
    keys = [(3, TAG, 0), (4, TAG, 1)]
    blocks = {}
    for quota in (5, 9):
        recording = Recording(verifier)
        chains = QuotaChains(sampler, recording, 50, keys)
        chains.advance([quota, quota], early_accept=False)
        blocks[quota, 0] = recording.blocks[0].reshape(2, quota)
        recording = Recording(verifier)
        chains = QuotaChains(sampler, recording, 50, keys)
        chains.advance([3, 3], early_accept=False)
        chains.advance([quota, quota], early_accept=False)
        blocks[quota, 1] = recording.blocks[1].reshape(2, quota)
    for decision in (0, 1):
        np.testing.assert_array_equal(blocks[5, decision], blocks[9, decision][:, :5])
    assert not np.array_equal(blocks[5, 0], blocks[5, 1])


def test_runs_are_reproducible_and_seeds_independent_of_the_batch(sampler, verifier):
    for name, policy_class in QUOTA_POLICIES.items():
        first = run(sampler, verifier, 50, [5, 6, 7], policy_class(), chains=2)
        again = run(sampler, verifier, 50, [5, 6, 7], policy_class(), chains=2)
        torch.testing.assert_close(first.x0, again.x0, rtol=0, atol=0)
        np.testing.assert_array_equal(first.nfe, again.nfe)
        np.testing.assert_array_equal(first.reward, again.reward)
        alone = run(sampler, verifier, 50, [6], policy_class(), chains=2)
        torch.testing.assert_close(alone.x0[0], first.x0[1], rtol=1e-12, atol=1e-12)
        assert alone.nfe[0] == first.nfe[1] and alone.reward[0] == pytest.approx(first.reward[1], abs=1e-12)
        for key in ("quotas", "used", "early"):
            np.testing.assert_array_equal(alone.trace[key][0], first.trace[key][1])
        other = run(sampler, verifier, 50, [8, 9, 10], policy_class(), chains=2)
        assert not torch.equal(other.x0, first.x0)


def test_a_generation_returns_its_best_chain(sampler, verifier):
    """With chains = 2 and budget B, a generation runs chains (seed, TAG, 0) and (seed, TAG, 1) with B // 2 NFE
    each and returns the one of higher reward; its nfe is the sum over its chains."""
    seeds, budget = [0, 1, 2, 3, 4, 5], 45
    result = run(sampler, verifier, budget, seeds, RolloverQuota(), chains=2)
    policy = RolloverQuota()
    chains = QuotaChains(sampler, verifier, budget // 2, [(seed, TAG, chain) for seed in seeds for chain in (0, 1)])
    while not chains.done:
        chains.advance(policy.quotas(chains), policy.early_accept)
    pairs = chains.reward.reshape(-1, 2)
    np.testing.assert_array_equal(result.reward, pairs.max(1))
    torch.testing.assert_close(result.x0, chains.x0[np.arange(len(seeds)) * 2 + pairs.argmax(1)], rtol=0, atol=0)
    np.testing.assert_array_equal(result.nfe, [44] * len(seeds))


def test_bad_arguments(sampler, verifier):
    with pytest.raises(ValueError, match="budget must be"):
        QuotaChains(sampler, verifier, STEPS, [(0,)])
    with pytest.raises(ValueError, match="budget must be"):
        QuotaChains(sampler, verifier, 20.0, [(0,)])
    with pytest.raises(ValueError, match="budget must be"):
        run(sampler, verifier, 21, [0], UniformQuota(), chains=2)  # 10 NFE per chain
    with pytest.raises(ValueError, match="keys"):
        QuotaChains(sampler, verifier, 30, [])
    with pytest.raises(ValueError, match="chains must be"):
        run(sampler, verifier, 30, [0], UniformQuota(), chains=0)
    for fraction in (-0.1, 1.0, 1.5):
        with pytest.raises(ValueError, match="init_fraction"):
            RolloverQuota(init_fraction=fraction)
    chains = QuotaChains(sampler, verifier, 30, [(0,), (1,)])
    np.testing.assert_array_equal(chains.max_quota, [20, 20])
    for quotas in ([0, 1], [1, 21], [1], [1, 1, 1], [-1, 5]):
        with pytest.raises(ValueError, match="quotas must be"):
            chains.advance(quotas, early_accept=False)
    assert chains.decision == 0 and np.all(chains.nfe == 0)  # a rejected call changes nothing
    chains.advance([20, 3], early_accept=False)
    np.testing.assert_array_equal(chains.max_quota, [1, 18])  # one NFE kept for each of the 9 later decisions
    with pytest.raises(ValueError, match="quotas must be"):
        chains.advance([2, 1], early_accept=False)
    one = QuotaChains(sampler, verifier, STEPS + 1, [(0,)])
    while not one.done:
        assert one.max_quota[0] == 1
        one.advance([1], early_accept=True)
    assert one.nfe[0] == STEPS + 1 and np.all(one.used == 1)
    with pytest.raises(RuntimeError, match="every decision"):
        one.advance([1], early_accept=False)


@pytest.mark.parametrize("budget, chains", [(60, 2), (137, 3), (200, 4)])
def test_stopped_chains_move_their_unspent_nfe_exactly(cheap, budget, chains):
    """Stop chains at random decisions: the NFE rebuilt from the trace (budget + transfers) bound every chain's
    spending, every move sums to zero, a stopped chain draws nothing more, and the total is never exceeded."""
    sampler, verifier = cheap
    rng = np.random.default_rng(budget)
    run_chains = QuotaChains(sampler, verifier, budget // chains, [(1, TAG, c) for c in range(chains)])
    stopped_at = {}
    while not run_chains.done:
        if run_chains.decision > 0 and run_chains.alive.sum() > 1 and rng.random() < 0.3:
            running = np.flatnonzero(run_chains.alive)
            chain = int(rng.choice(running))
            unspent = int(run_chains.remaining[chain])
            assert run_chains.stop(chain) == unspent
            stopped_at[chain] = run_chains.decision
        quotas = np.where(run_chains.alive, rng.integers(1, np.maximum(run_chains.max_quota, 1) + 1), 0)
        run_chains.advance(quotas, early_accept=True)
    rebuilt = budget // chains + run_chains.transfers.sum(axis=1)
    np.testing.assert_array_equal(rebuilt, run_chains.budgets)
    assert run_chains.transfers.sum() == 0 and np.all(run_chains.transfers.sum(axis=0) == 0)
    np.testing.assert_array_equal(run_chains.used.sum(axis=1), run_chains.nfe)
    assert np.all(run_chains.nfe <= rebuilt) and run_chains.cost <= (budget // chains) * chains
    for chain, decision in stopped_at.items():
        assert run_chains.used[chain, decision:].sum() == 0 and run_chains.nfe[chain] == rebuilt[chain]
        assert run_chains.transfers[chain, decision] < 0 or run_chains.nfe[chain] == rebuilt[chain]
    assert run_chains.alive.sum() >= 1


def test_stopping_splits_the_unspent_nfe_evenly_best_first(cheap):
    sampler, verifier = cheap
    run_chains = QuotaChains(sampler, verifier, 40, [(2, TAG, c) for c in range(3)])
    run_chains.advance([1, 1, 1], early_accept=False)
    run_chains.reward[:] = [0.0, -1.0, -2.0]  # chain 0 leads
    moved = run_chains.stop(2)
    assert moved == 39 and run_chains.transfers[:, 1].tolist() == [20, 19, -39]
    assert run_chains.max_quota[2] == 0 and run_chains.best_chain() == 0


def test_bad_stops_are_rejected(cheap):
    sampler, verifier = cheap
    run_chains = QuotaChains(sampler, verifier, 20, [(3, TAG, 0), (3, TAG, 1)])
    with pytest.raises(ValueError, match="decisions 1"):
        run_chains.stop(0)
    run_chains.advance([1, 1], early_accept=False)
    with pytest.raises(ValueError, match="running chain"):
        run_chains.stop(5)
    run_chains.stop(1)
    with pytest.raises(ValueError, match="last running chain"):
        run_chains.stop(0)
    with pytest.raises(ValueError, match="0 for a stopped chain"):
        run_chains.advance([1, 1], early_accept=False)


@pytest.mark.parametrize("budget, chains", [(60, 2), (137, 3), (200, 4)])
def test_resampled_chains_spend_and_move_their_unspent_nfe_exactly(cheap, budget, chains):
    """Stop or resample chains at random decisions: every chain's NFE is its proposals plus its fresh trajectories
    (whole ones, steps + 1 NFE each), the budgets rebuilt from the transfers match, moves sum to zero, and the
    total never exceeds the budget."""
    sampler, verifier = cheap
    rng = np.random.default_rng(budget + 1)
    run_chains = QuotaChains(sampler, verifier, budget // chains, [(4, TAG, c) for c in range(chains)])
    resampled_at = {}
    while not run_chains.done:
        if run_chains.decision > 0 and run_chains.alive.sum() > 1 and rng.random() < 0.4:
            chain = int(rng.choice(np.flatnonzero(run_chains.alive)))
            unspent = int(run_chains.remaining[chain])
            if rng.random() < 0.5:
                assert run_chains.resample(chain) == unspent // (STEPS + 1)
                resampled_at[chain] = (run_chains.decision, unspent)
            else:
                run_chains.stop(chain)
        quotas = np.where(run_chains.alive, rng.integers(1, np.maximum(run_chains.max_quota, 1) + 1), 0)
        run_chains.advance(quotas, early_accept=True)
    rebuilt = budget // chains + run_chains.transfers.sum(axis=1) + run_chains.resampled.sum(axis=1)
    np.testing.assert_array_equal(rebuilt, run_chains.budgets)
    assert run_chains.transfers.sum() == 0 and np.all(run_chains.transfers.sum(axis=0) == 0)
    np.testing.assert_array_equal(run_chains.used.sum(axis=1) + run_chains.resampled.sum(axis=1), run_chains.nfe)
    assert np.all(run_chains.resampled % (STEPS + 1) == 0) and run_chains.cost <= (budget // chains) * chains
    for chain, (decision, unspent) in resampled_at.items():
        fresh = run_chains.resampled[chain, decision]
        assert fresh == unspent // (STEPS + 1) * (STEPS + 1) and run_chains.used[chain, decision:].sum() == 0
        assert run_chains.finished[chain] == (fresh > 0) and not run_chains.alive[chain]


def test_resampling_keeps_the_best_fresh_trajectory(cheap):
    """A resampled chain's output is the best of its fresh plain trajectories, drawn as FlowSampler.generate with
    the (key, decision, 1) stream; the output chain is the best among running and resampled chains."""
    sampler, verifier = cheap
    run_chains = QuotaChains(sampler, verifier, 40, [(5, TAG, c) for c in range(3)])
    run_chains.advance([1, 1, 1], early_accept=False)
    assert run_chains.resample(2) == 39 // (STEPS + 1)
    generator = np.random.default_rng(np.random.SeedSequence([5, TAG, 2, 1, 1]))  # (key, decision 1, 1)
    x0 = sampler.generate(torch.from_numpy(generator.standard_normal((3, sampler.dim))), generator)
    rewards = verifier(x0).numpy()
    assert run_chains.reward[2] == rewards.max() and run_chains.finished[2]
    torch.testing.assert_close(run_chains.x0[2], x0[int(np.argmax(rewards))])
    assert run_chains.transfers[:, 1].tolist() == [3, 3, -39] and run_chains.budgets.sum() == 120
    run_chains.reward[:2] = run_chains.reward[2] - 1.0
    assert run_chains.output_chain() == 2 and run_chains.best_chain() in (0, 1)


def test_bad_resamples_are_rejected(cheap):
    sampler, verifier = cheap
    run_chains = QuotaChains(sampler, verifier, 20, [(3, TAG, 0), (3, TAG, 1)])
    with pytest.raises(ValueError, match="decisions 1"):
        run_chains.resample(0)
    run_chains.advance([1, 1], early_accept=False)
    run_chains.resample(1)
    with pytest.raises(ValueError, match="last running chain"):
        run_chains.resample(0)
