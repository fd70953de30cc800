"""The sampler bench's fresh-noise check: the strongest baseline and the agents again, on noise nothing else saw.

``adaptstep bench sampler --fresh-episodes N --fresh-seed S``: after the strongest baseline of each NFE is chosen on
tuning noise and reported on held-out noise, the strongest baseline and the agent of every NFE with an agent run on
N further noise batches (episode seeds S…), disjoint from the tuning and held-out seeds and from their envs' noise
seeds (checked). Per NFE (``fresh_summary``):

- both methods' pooled RMSE √(mean e²) with its bootstrap 95% CI (``metrics.pooled_rmse``) and the ratio agent /
  strongest with a paired bootstrap 95% CI over the same samples (``metrics.paired_ratio``);
- for a mixture, both mode-switch rates, and the ratio of the two without their switched samples;
- the **switch floor**: the lowest mode-switch rate of any strongest-baseline candidate on the tuning noise, and the
  ratio it permits, √(floor · s²) / RMSE_strongest with s² the mean squared error of the strongest's switched fresh
  samples: the ratio of a method that switches the floor's share of samples and is exact on every other one.

A batch's switched samples are taken to be its k largest errors, k = its switch rate × its size (on gmm-64d a
switched sample's error is about 1.4, the others' below 0.3).
"""

from __future__ import annotations

import argparse
import math
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from adaptstep.core.heldout import check_disjoint
from adaptstep.diffusion.metrics import paired_ratio, pooled_rmse
from adaptstep.evaluation import evaluate

ENV_ID = "adaptstep/DiffusionSampler-v0"
FRESH_SEED = 50_000  # the first fresh seed: far from the held-out 10_000… and the tuning 90_000…


def fresh_rows(agents: Mapping[int, str], winners: Mapping[int, str], env_specs: Mapping[int, Collection[str]],
               env_kwargs: Mapping[str, Any], seeds: range, used_seeds: Iterable[int], used_noise: Iterable[int],
               off_env: Callable[[pd.Series, int], pd.DataFrame]) -> pd.DataFrame:
    """The harness rows of the strongest baseline (``method`` ``strongest``) and the agent (``agent``) on the fresh
    ``seeds`` at every NFE of ``agents`` that has a winner.

    Args:
        agents: {NFE: the agent's controller spec}.
        winners: {NFE: the strongest baseline's spec, or an off-env method's name}.
        env_specs: {NFE: the candidates that run on the env}; a winner outside them runs through ``off_env``.
        env_kwargs: The env's kwargs but ``nfe``.
        seeds: The fresh episode seeds.
        used_seeds: The tuning and held-out episode seeds, which ``seeds`` must avoid.
        used_noise: Their envs' noise seeds, which the fresh rows' noise seeds must avoid.
        off_env: (noise: episode seed -> noise seed, NFE) -> the off-env rows on that noise, for an off-env winner.

    Raises:
        ValueError: If the fresh seeds or their noise seeds overlap the used ones.
    """
    check_disjoint(seeds, used_seeds)
    tables = []
    for nfe in sorted(nfe for nfe in agents if nfe in winners):
        winner = winners[nfe]
        in_env = winner in env_specs.get(nfe, ())
        table = evaluate(ENV_ID, [agents[nfe], winner] if in_env else [agents[nfe]], episodes=len(seeds),
                         seed=seeds.start, env_kwargs={**dict(env_kwargs), "nfe": nfe})
        if not in_env:
            noise = table.drop_duplicates("seed").set_index("seed")["noise_seed"]
            off = off_env(noise, nfe)
            table = pd.concat([table, off[off["controller"] == winner]], ignore_index=True)
        tables.append(table.assign(method=np.where(table["controller"] == winner, "strongest", "agent"), nfe=nfe))
    rows = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame()
    if len(rows):
        check_disjoint(rows["noise_seed"], used_noise)
    return rows


def switched(errors: np.ndarray, rate: float) -> np.ndarray:
    """The mask of a batch's switched samples: its round(rate · n) largest errors."""
    errors = np.asarray(errors, dtype=np.float64)
    mask = np.zeros(errors.size, dtype=bool)
    count = int(round(rate * errors.size)) if math.isfinite(rate) else 0
    if count:
        mask[np.argsort(-errors, kind="stable")[:count]] = True
    return mask


def _pooled(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, list[int]]:
    """(per-sample errors, switched mask, noise seeds), in seed order."""
    rows = rows.sort_values("seed", kind="stable")
    rates = rows["mode_switch_rate"] if "mode_switch_rate" in rows else pd.Series(math.nan, index=rows.index)
    errors = [np.asarray(values, dtype=np.float64) for values in rows["sample_errors"]]
    masks = [switched(values, float(rate)) for values, rate in zip(errors, rates)]
    return np.concatenate(errors), np.concatenate(masks), list(rows["noise_seed"])


def fresh_summary(rows: pd.DataFrame, floors: Mapping[int, float] | None = None) -> pd.DataFrame:
    """Per NFE: the strongest and the agent on the fresh noise, their paired ratio, switch rates and switch floor.

    Args:
        rows: ``fresh_rows``' rows.
        floors: {NFE: the lowest switch rate of any candidate on the tuning noise}; None or NaN for no mixture.

    Returns:
        Columns ``nfe``, ``strongest_method``, ``samples``, ``strongest_rmse``, ``agent_rmse``, ``ratio``, ``ratio_low``, ``ratio_high``,
        text columns ``strongest``, ``agent``, ``agent / strongest``, and for a mixture ``agent_switch_rate``,
        ``strongest_switch_rate``, ``switch_floor``, ``floor_ratio`` and ``ratio_without_switches`` (NaN without).

    Raises:
        ValueError: If the two methods did not run on the same noise.
    """
    summary = []
    for nfe, group in rows.groupby("nfe"):
        agent, agent_switched, agent_noise = _pooled(group[group["method"] == "agent"])
        best, best_switched, best_noise = _pooled(group[group["method"] == "strongest"])
        if agent_noise != best_noise:
            raise ValueError(f"NFE {nfe}: the agent and the strongest baseline ran on different noise")
        ratio, low, high = paired_ratio(agent, best)
        (agent_rmse, a_low, a_high), (best_rmse, b_low, b_high) = pooled_rmse(agent), pooled_rmse(best)
        floor = (floors or {}).get(int(nfe), math.nan)
        mixture = "mode_switch_rate" in group and group["mode_switch_rate"].notna().all()
        kept = ~(agent_switched | best_switched)
        summary.append({
            "nfe": int(nfe), "strongest_method": group.loc[group["method"] == "strongest", "controller"].iloc[0],
            "samples": agent.size, "strongest_rmse": best_rmse, "agent_rmse": agent_rmse,
            "ratio": ratio, "ratio_low": low, "ratio_high": high,
            "strongest": f"{best_rmse:.3g} [{b_low:.3g}, {b_high:.3g}]",
            "agent": f"{agent_rmse:.3g} [{a_low:.3g}, {a_high:.3g}]",
            "agent / strongest": f"{ratio:.2f} [{low:.2f}, {high:.2f}]",
            "agent_switch_rate": agent_switched.mean() if mixture else math.nan,
            "strongest_switch_rate": best_switched.mean() if mixture else math.nan,
            "switch_floor": floor,
            "floor_ratio": math.sqrt(floor * np.mean(best[best_switched]**2)) / best_rmse
            if mixture and best_switched.any() and math.isfinite(floor) else math.nan,
            "ratio_without_switches": math.sqrt(np.mean(agent[kept]**2) / np.mean(best[kept]**2))
            if mixture and kept.any() else math.nan,
        })
    return pd.DataFrame(summary)


def switch_floors(tuning: pd.DataFrame) -> dict[int, float]:
    """{NFE: the lowest mean mode-switch rate of any candidate on the tuning noise}; empty without switch rates."""
    if "mode_switch_rate" not in tuning or tuning["mode_switch_rate"].isna().all():
        return {}
    rates = tuning.groupby(["nfe", "controller"])["mode_switch_rate"].mean()
    return {int(nfe): float(rate) for nfe, rate in rates.groupby(level="nfe").min().items()}


def fresh_sentence(args: argparse.Namespace) -> str:
    """The paragraph above the fresh-noise table."""
    return (f"Fresh noise: the strongest baseline of each NFE above and the agent again on {args.fresh_episodes} "
            f"further noise batches of {args.batch_size} (seeds {args.fresh_seed}…; disjoint from the tuning and "
            "held-out seeds and their noise seeds, checked), paired sample by sample: pooled RMSE with bootstrap "
            "95% CIs and the ratio with a paired bootstrap 95% CI. For a mixture: the mode-switch rates, the ratio "
            "without the samples either method switched, the switch floor (the lowest switch rate of any "
            "strongest-baseline candidate on the tuning noise) and the ratio it permits (a method switching that "
            "share and exact on every other sample, at the strongest's mean squared switched error; a batch's "
            "switched samples are its rate × size largest errors).")


def fresh_columns(fresh: pd.DataFrame) -> pd.DataFrame:
    """The fresh-noise table as rendered (the mixture-only columns dropped where they are all NaN)."""
    columns = {"nfe": "nfe", "strongest_method": "strongest", "strongest": "strongest RMSE [95% CI]",
               "agent": "agent RMSE [95% CI]", "agent / strongest": "agent / strongest [paired 95% CI]",
               "agent_switch_rate": "switch rate agent", "strongest_switch_rate": "switch rate strongest",
               "ratio_without_switches": "ratio without switched samples", "switch_floor": "switch floor (tuning)",
               "floor_ratio": "ratio the floor permits"}
    return fresh[list(columns)].rename(columns=columns).dropna(axis=1, how="all")
