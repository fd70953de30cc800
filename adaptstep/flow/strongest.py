"""The strongest search rule of budget forcing, chosen per budget on tuning seeds and reported on held-out seeds.

Candidates (``candidates``): best-of-N, Search over Paths, SMC / FK steering with each potential (diff, max, rt),
and the quota rules SVDD, the linear schedule, RBF and RBF without early acceptance on 1, 2 and 4 chains (those
whose per-chain budget holds one NFE per decision). Each runs off the env (``run_method``) on ``tuning_episodes``
generation seeds from ``TUNING_SEED``; the winner per budget has the highest mean verifier reward there. The
tuning seeds are checked disjoint from the held-out seeds before anything runs.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import pandas as pd

from adaptstep.core.heldout import best_of, check_disjoint
from adaptstep.flow.methods import run_method
from adaptstep.flow.sampler import FlowSampler
from adaptstep.flow.tasks import Task

TUNING_SEED = 90_000  # far from the bench's held-out generation seeds 20_000…
CHAIN_COUNTS = (1, 2, 4)
QUOTA_RULES = {"SVDD": ("svdd", {}), "linear": ("linear", {}), "RBF": ("rbf", {}),
               "RBF no-early": ("rbf", {"early_accept": False})}
PARTICLE_RULES = {"BoN": ("bon", {}), "SoP": ("sop", {}), "SMC diff": ("smc", {"potential": "diff"}),
                  "SMC max": ("smc", {"potential": "max"}), "SMC rt": ("smc", {"potential": "rt"})}


def candidates(budget: int, steps: int) -> dict[str, tuple[str, dict[str, Any]]]:
    """{name: (method, options)} of every rule that fits ``budget`` NFE with ``steps`` steps (``NAME ×C`` for C
    chains)."""
    rules = {name: (method, dict(options)) for name, (method, options) in PARTICLE_RULES.items()}
    for name, (method, options) in QUOTA_RULES.items():
        rules.update({f"{name} ×{chains}": (method, {**options, "chains": chains}) for chains in CHAIN_COUNTS
                      if budget // chains >= steps + 1})
    return rules


def select_strongest(task: Task, sampler: FlowSampler, budgets: Iterable[int], heldout_seeds: Iterable[int],
                     tuning_episodes: int = 100, tuning_seed: int = TUNING_SEED
                     ) -> tuple[dict[int, str], pd.DataFrame]:
    """({budget: the candidate of highest mean reward on the tuning seeds}, the tuning means).

    Args:
        task: The task (its verifier guides the search and scores the candidates).
        sampler: The flow sampler.
        budgets: The NFE budgets.
        heldout_seeds: The seeds the winners will be reported on; the tuning seeds must avoid them.
        tuning_episodes: Generations per candidate and budget.
        tuning_seed: The first tuning seed.

    Returns:
        The winners and one row per budget and candidate: ``budget``, ``rule``, ``reward`` (mean on the tuning seeds).

    Raises:
        ValueError: If the tuning seeds overlap the held-out seeds.
    """
    seeds = list(range(tuning_seed, tuning_seed + tuning_episodes))
    check_disjoint(seeds, heldout_seeds)
    winners, rows = {}, []
    for budget in budgets:
        scores = {}
        for name, (method, options) in candidates(budget, sampler.steps).items():
            scores[name] = float(run_method(method, sampler, task.verifier, budget, seeds, **options).reward.mean())
            rows.append({"budget": budget, "rule": name, "reward": scores[name]})
        winners[budget] = best_of(scores, higher_is_better=True)
    return winners, pd.DataFrame(rows)
