"""The strongest baseline: every off-the-shelf configuration scored on tuning noise, the best kept per NFE.

Candidates (``candidate_specs``): the hand schedules (time-uniform, time-quadratic, logSNR-uniform, EDM) × the
multistep solvers (DPM-Solver++ 2M, 3M with the exact and with DPM-Solver's coefficients, UniPC bh1/bh2 of orders
2 and 3) × the final-order rules (``nn.solvers.FINAL_ORDER_RULES``; rules that give the same orders at an NFE are
run once), plus diffusers' schedulers (``diffusers:`` DPM-Solver++ 2M/3M and UniPC bh1/bh2 2/3 over their own
spacings). Each runs through the harness on ``tuning_episodes`` seeds from ``tuning_seed``; solvers that the env
cannot run (iPNDM) are candidates through ``off_env``, which scores them on the same tuning noise (the harness rows'
noise seeds). The winner per NFE is the lowest pooled RMSE over all tuning samples (√ of the mean squared
per-sample error). Tuning seeds must be disjoint from the held-out seeds the winner is then reported on (checked,
both as episode seeds and as the envs' noise seeds).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from adaptstep.core.heldout import best_of, check_disjoint
from adaptstep.evaluation import evaluate
from adaptstep.nn.solvers import FINAL_ORDER_RULES, multistep_orders, solver_order

ENV_ID = "adaptstep/DiffusionSampler-v0"
HAND_SCHEDULES = ("time_uniform", "time_quadratic", "logsnr_uniform", "edm")
SOLVER_VARIANTS = ("dpmpp2m", "dpmpp3m", "dpmpp3m,third_order=dpmsolver", "unipc2-bh1", "unipc3-bh1",
                   "unipc2-bh2", "unipc3-bh2")
DIFFUSERS_SPACINGS = ("linspace", "trailing", "karras", "exponential")
TUNING_SEED = 90_000  # the first tuning seed: far from the benchmarks' held-out seeds 10_000…


def candidate_specs(nfe: int, schedules: Iterable[str] = HAND_SCHEDULES, solvers: Iterable[str] = SOLVER_VARIANTS,
                    diffusers: bool = True) -> list[str]:
    """Every candidate controller spec at ``nfe`` (see the module docstring), one per distinct order sequence."""
    specs = []
    for solver in solvers:
        name = solver.split(",")[0]
        seen = set()
        for rule in FINAL_ORDER_RULES:
            orders = tuple(multistep_orders(solver_order(name), nfe, rule))
            if orders in seen:
                continue
            seen.add(orders)
            specs += [f"schedule:{schedule},solver={solver},lower_order_final={rule}" for schedule in schedules]
    if diffusers:
        for order in (2, 3):
            specs += [f"diffusers:dpmsolver++,order={order},spacing={spacing}"
                      for spacing in (*DIFFUSERS_SPACINGS, "lu_lambdas")]
            specs += [f"diffusers:unipc,order={order},solver_type={variant},spacing={spacing}"
                      for variant in ("bh1", "bh2") for spacing in DIFFUSERS_SPACINGS]
    return specs


def pooled_errors(table: pd.DataFrame) -> np.ndarray:
    """The per-sample errors of every row of ``table`` (its ``sample_errors`` lists), concatenated."""
    return np.concatenate([np.asarray(values, dtype=np.float64) for values in table["sample_errors"]])


def pooled_rmse_of(table: pd.DataFrame) -> float:
    """√(mean e²) over every sample of every row."""
    return math.sqrt(float(np.mean(pooled_errors(table) ** 2)))


def select_strongest(nfes: Iterable[int], env_kwargs: Mapping[str, Any], heldout_seeds: Iterable[int],
                     tuning_episodes: int = 4, tuning_seed: int = TUNING_SEED, candidates: Mapping[int, list[str]]
                     | None = None, progress: bool = False,
                     off_env: Callable[[pd.Series, int], pd.DataFrame] | None = None
                     ) -> tuple[dict[int, str], pd.DataFrame]:
    """({nfe: the spec (or off-env method) of lowest pooled RMSE on the tuning seeds}, the tuning rows with ``nfe``).

    Args:
        nfes: The NFE budgets.
        env_kwargs: The env's kwargs (model, batch size, …) but ``nfe``.
        heldout_seeds: The seeds the winners will be reported on; the tuning seeds must avoid them.
        tuning_episodes: Tuning episodes (noise batches) per candidate.
        tuning_seed: The first tuning seed.
        candidates: {nfe: specs} instead of ``candidate_specs(nfe)``.
        progress: Show the harness's progress bars.
        off_env: (noise: episode seed -> the env's noise seed, nfe) -> rows of further candidates on that noise,
            each with ``controller``, ``seed``, ``noise_seed`` and ``sample_errors``.
    """
    tuning_seeds = range(tuning_seed, tuning_seed + tuning_episodes)
    check_disjoint(tuning_seeds, heldout_seeds)
    winners, tables = {}, []
    for nfe in nfes:
        specs = list(candidates[nfe]) if candidates is not None else candidate_specs(nfe)
        table = evaluate(ENV_ID, specs, episodes=tuning_episodes, seed=tuning_seed,
                         env_kwargs={**dict(env_kwargs), "nfe": nfe}, progress=progress)
        if off_env is not None:
            noise = table.drop_duplicates("seed").set_index("seed")["noise_seed"]
            table = pd.concat([table, off_env(noise, nfe)], ignore_index=True)
        scores = {spec: pooled_rmse_of(group) for spec, group in table.groupby("controller", sort=False)}
        winners[nfe] = best_of(scores, higher_is_better=False)
        tables.append(table.assign(nfe=nfe, pooled_rmse=table["controller"].map(scores)))
    return winners, pd.concat(tables, ignore_index=True)
