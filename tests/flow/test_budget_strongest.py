"""The strongest budget rule: every rule is a candidate, the choice never sees held-out seeds."""

import numpy as np
import pytest

from adaptstep.flow import strongest
from adaptstep.flow.sampler import FlowSampler
from adaptstep.flow.strongest import candidates, select_strongest
from adaptstep.flow.tasks import make_task


@pytest.fixture(scope="module")
def setting():
    task = make_task("gmm-2d-compositional", device="cpu")
    return task, FlowSampler(task.flow, "linear-sde", steps=4)


def test_candidates_hold_every_rule_and_chain_count_that_fits():
    rules = candidates(100, 10)
    assert {"BoN", "SoP", "SMC diff", "SMC max", "SMC rt"} <= set(rules)
    for rule in ("SVDD", "linear", "RBF", "RBF no-early"):
        assert {f"{rule} ×{c}" for c in (1, 2, 4)} <= set(rules)
    assert rules["RBF no-early ×2"] == ("rbf", {"early_accept": False, "chains": 2})
    assert "SVDD ×4" not in candidates(40, 10) and "SVDD ×2" in candidates(22, 10)


def test_tuning_seeds_must_avoid_the_heldout_seeds(setting):
    task, sampler = setting
    with pytest.raises(ValueError, match="disjoint"):
        select_strongest(task, sampler, [20], heldout_seeds=range(5, 50), tuning_episodes=3, tuning_seed=10)


def test_the_choice_uses_only_tuning_seeds_and_picks_the_best_mean(setting, monkeypatch):
    task, sampler = setting
    seen = []
    real = strongest.run_method

    def recording(method, sampler_, verifier, budget, seeds, **options):
        seen.extend(seeds)
        return real(method, sampler_, verifier, budget, seeds, **options)

    monkeypatch.setattr(strongest, "run_method", recording)
    heldout = range(20_000, 20_010)
    winners, table = select_strongest(task, sampler, [20, 40], heldout, tuning_episodes=3, tuning_seed=500)
    assert set(seen) == {500, 501, 502} and not set(seen) & set(heldout)
    for budget, rule in winners.items():
        means = table[table.budget == budget].set_index("rule").reward
        assert means[rule] == means.max() and set(means.index) == set(candidates(budget, 4))
        assert np.isfinite(means[rule])


def test_the_oracle_bounds_every_schedule_and_the_uniform_one_is_svdd(setting):
    from adaptstep.flow.methods import run_method
    from adaptstep.flow.oracle import TiltedQuota, allocation_headroom

    task, sampler = setting
    seeds = [3, 4, 5]
    table = allocation_headroom(task, sampler, [20], seeds, init_fractions=(0.0, 0.2), tilts=(-1.0, 0.0, 1.0))
    row = table.iloc[0]
    svdd = run_method("svdd", sampler, task.verifier, 20, seeds, chains=1).reward.mean()
    assert row["uniform (SVDD ×1)"] == pytest.approx(svdd)
    best = float(row["best schedule"].rsplit(": ", 1)[1])
    assert row["per-generation oracle"] >= best - 1e-3 >= svdd - 1e-3 and row["max mean NFE"] <= 20
    with pytest.raises(ValueError, match="init_fraction"):
        TiltedQuota(1.0, 0.0)


def test_hybrids_are_best_of_n_beside_one_chain_and_the_oracle_bounds_them(setting):
    """Each hybrid is the per-seed maximum of n draws and one chain on the rest; best-of-N with every draw and the
    hybrids are bounded by the per-generation oracle, and a hybrid never beats its own parts' maximum."""
    from adaptstep.flow.methods import run_method
    from adaptstep.flow.oracle import hybrid_headroom

    task, sampler = setting
    seeds = list(range(20))
    row = hybrid_headroom(task, sampler, [24], seeds, rules=("svdd",)).iloc[0]
    cost = sampler.steps + 1
    assert cost == 5 and row["best hybrid"].startswith(tuple(f"{n} draws + svdd" for n in range(1, 4)))
    n = int(row["best hybrid"].split()[0])
    expected = np.maximum(run_method("bon", sampler, task.verifier, n * cost, seeds, particles=n).reward,
                          run_method("svdd", sampler, task.verifier, 24 - n * cost, seeds, chains=1).reward).mean()
    assert float(row["best hybrid"].split(": ")[1]) == pytest.approx(expected, rel=1e-3)
    assert row["per-generation oracle"] >= max(expected, row["best-of-N"]) - 1e-9
