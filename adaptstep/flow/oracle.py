"""How much could any allocation gain over the strongest rule? A grid of fixed quota schedules and its oracle.

Schedules (``TiltedQuota``): one chain, an initial best-of-K0 with K0 = max(1, round(f·B)), then step i of M gets
⌊(B − K0)·w_i/Σw⌋ proposals (at least 1) with w_i = exp(a·(i − 1)/(M − 1)), a < 0 front-loading and a > 0
back-loading; the last step takes all that remains; argmax acceptance. On the same seeds it reports the best
schedule by mean reward, and the per-generation oracle: the mean over seeds of the best schedule's reward for that
seed, a hindsight bound on any allocation that picks one of these schedules per generation.

Hybrid schedules (``hybrid_headroom``, ``--hybrid``): n best-of-N draws (plain trajectories, steps + 1 NFE each)
beside one step-wise chain (SVDD or the linear schedule) with the B − n·(steps + 1) NFE left, the output the best of
them: the fixed choice between resampling and proposing that ``BudgetForcing-v0``'s ``resample`` action can make.

Run: ``python -m adaptstep.flow.oracle --task gmm-2d-compositional --budgets 50 100 --episodes 200``.
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import torch

from adaptstep.core.report import markdown_table
from adaptstep.flow.chains import QuotaChains, QuotaPolicy, run_quota_method
from adaptstep.flow.methods import run_method
from adaptstep.flow.sampler import FlowSampler
from adaptstep.flow.strongest import TUNING_SEED
from adaptstep.flow.tasks import FLOW_TASKS, Task, make_task

INIT_FRACTIONS = (0.0, 0.05, 0.1, 0.2, 0.3, 0.5, 0.8)
TILTS = (-2.0, -1.0, 0.0, 1.0, 2.0)


class TiltedQuota(QuotaPolicy):
    """Initial best-of-K0, then quotas ∝ exp(a·(i − 1)/(M − 1)) (see the module docstring).

    Args:
        init_fraction: f of K0 = max(1, round(f·B)), in [0, 1).
        tilt: a.
    """

    def __init__(self, init_fraction: float, tilt: float) -> None:
        if not 0 <= init_fraction < 1 or not math.isfinite(tilt):
            raise ValueError(f"init_fraction must be in [0, 1) and tilt finite, got {init_fraction!r}, {tilt!r}")
        self.init_fraction, self.tilt = init_fraction, tilt
        self.name = f"K0 {init_fraction:g}·B, tilt {tilt:+g}"

    def quotas(self, chains: QuotaChains) -> np.ndarray:
        """K0 first, the tilted share at each middle step, the rest at the last."""
        steps, decision = chains.decisions - 1, chains.decision
        initial = int(min(max(1, round(self.init_fraction * chains.budget)), chains.budget - steps))
        if decision == 0:
            return np.full(len(chains.keys), initial)
        if decision == chains.decisions - 1:
            return chains.max_quota
        weights = np.exp(self.tilt * np.arange(steps) / max(1, steps - 1))
        share = max(1, int((chains.budget - initial) * weights[decision - 1] / weights.sum()))
        return np.minimum(share, chains.max_quota)


def allocation_headroom(task: Task, sampler: FlowSampler, budgets: Iterable[int], seeds: Sequence[int],
                        init_fractions: Sequence[float] = INIT_FRACTIONS, tilts: Sequence[float] = TILTS
                        ) -> pd.DataFrame:
    """Per budget: the uniform schedule (SVDD ×1), the best schedule of the grid and the per-generation oracle.

    Returns:
        One row per budget: ``svdd`` (K0 = 1, a = 0), ``best`` (its name and mean), ``oracle`` (mean over seeds
        of the best schedule's reward per seed), and ``nfe`` (the largest mean NFE of a schedule).
    """
    rows = []
    for budget in budgets:
        rewards, nfe = {}, 0.0
        for fraction in init_fractions:
            for tilt in tilts:
                policy = TiltedQuota(fraction, tilt)
                result = run_quota_method(sampler, task.verifier, budget, seeds, policy, chains=1)
                rewards[policy.name], nfe = result.reward, max(nfe, float(result.nfe.mean()))
        table = pd.DataFrame(rewards)
        means = table.mean()
        rows.append({"budget": budget, "uniform (SVDD ×1)": means[TiltedQuota(0.0, 0.0).name],
                     "best schedule": f"{means.idxmax()}: {means.max():.4g}",
                     "per-generation oracle": table.max(axis=1).mean(), "max mean NFE": nfe})
    return pd.DataFrame(rows)


def hybrid_headroom(task: Task, sampler: FlowSampler, budgets: Iterable[int], seeds: Sequence[int],
                    rules: Sequence[str] = ("svdd", "linear")) -> pd.DataFrame:
    """Per budget: best-of-N with every draw, and the best hybrid of n draws beside one chain of each rule.

    Returns:
        One row per budget: ``best-of-N`` (N = B // (steps + 1)), ``best hybrid`` (its n, rule and mean), and the
        per-generation oracle over best-of-N and the hybrids.
    """
    rows, cost = [], sampler.steps + 1
    for budget in budgets:
        full = budget // cost
        draws = {n: run_method("bon", sampler, task.verifier, n * cost, seeds, particles=n).reward
                 for n in range(1, full + 1)}
        rewards = {f"best-of-{full}": draws[full]}
        for rule in rules:
            for n in range(1, full):
                if budget - n * cost >= cost:
                    chain = run_method(rule, sampler, task.verifier, budget - n * cost, seeds, chains=1).reward
                    rewards[f"{n} draws + {rule} ×1"] = np.maximum(draws[n], chain)
        table = pd.DataFrame(rewards)
        means = table.mean()
        hybrids = means.drop(f"best-of-{full}")
        rows.append({"budget": budget, "best-of-N": means[f"best-of-{full}"],
                     "best hybrid": f"{hybrids.idxmax()}: {hybrids.max():.4g}",
                     "per-generation oracle": table.max(axis=1).mean()})
    return pd.DataFrame(rows)


def main(argv: Sequence[str] | None = None) -> None:
    """Print the headroom table for ``--task`` at ``--budgets`` on ``--episodes`` tuning seeds."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", default="gmm-2d-compositional", choices=FLOW_TASKS)
    parser.add_argument("--budgets", type=int, nargs="+", default=[50, 100])
    parser.add_argument("--episodes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=TUNING_SEED)
    parser.add_argument("--sde", default="linear-sde")
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--hybrid", action="store_true", help="best-of-N beside one step-wise chain instead")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    task = make_task(args.task, device="cpu")
    sampler = FlowSampler(task.flow, args.sde, steps=args.steps)
    seeds = range(args.seed, args.seed + args.episodes)
    headroom = hybrid_headroom if args.hybrid else allocation_headroom
    print(markdown_table(headroom(task, sampler, args.budgets, list(seeds)), "{:.4g}"))


if __name__ == "__main__":
    main()
