"""Where a controller stands against sweeps of fixed settings, from harness tables.

Against one sweep's curve of medians (``sweep_comparison``) and against the lower envelope of several sweeps, with
bootstrap CIs over the episodes (``UnionEnvelope``, ``envelope_comparison``); the mean of a score and the paired
difference of two with percentile-bootstrap CIs (``bootstrap_mean``, ``paired_difference``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from adaptstep.evaluation import pareto_mask


TINY = np.finfo(float).tiny  # an error of exactly 0 (no drift at all) counts as this on log axes


def _interpolate_log(x: float, xs: np.ndarray, ys: np.ndarray) -> float:
    """log-log interpolation of y(x) through the points (xs, ys); NaN outside their range."""
    order = np.argsort(xs)
    log_x, log_xs, log_ys = np.log10(x), np.log10(xs[order]), np.log10(ys[order])
    if not log_xs[0] <= log_x <= log_xs[-1]:
        return float("nan")
    return float(10 ** np.interp(log_x, log_xs, log_ys))


def sweep_comparison(summary: pd.DataFrame, controller: str, sweep: Sequence[str], metric: str) -> dict[str, float]:
    """Compare ``controller``'s median (cost, metric) with the sweep's curve of medians (lower is better).

    Args:
        summary: Per-controller medians, indexed by controller (``cost_median``, ``<metric>_median`` columns).
        controller: The controller's row.
        sweep: The sweep's rows.
        metric: The error column (lower is better).

    Returns:
        ``cost_ratio``: the controller's cost over the sweep's cost at the controller's error (< 1: cheaper);
        ``error_ratio``: the sweep's error at the controller's cost over the controller's error (> 1: more
        accurate). NaN where the controller lies outside the sweep's range.
    """
    cost, error = summary.loc[controller, ["cost_median", f"{metric}_median"]].astype(float)
    error = max(error, TINY)
    sweep_cost = summary.loc[list(sweep), "cost_median"].to_numpy(dtype=float)
    sweep_error = np.maximum(summary.loc[list(sweep), f"{metric}_median"].to_numpy(dtype=float), TINY)
    return {
        "cost_ratio": cost / _interpolate_log(error, sweep_error, sweep_cost),
        "error_ratio": _interpolate_log(cost, sweep_cost, sweep_error) / error,
    }


def sweep_name(spec: str) -> str:
    """The sweep a controller spec belongs to: the spec without its ``KEY=VALUE`` settings.

    So one parameter sweep is one curve (``fixed:eta=0.01`` → ``fixed``, ``whole:ias15,epsilon=1e-5`` →
    ``whole:ias15``); a leading value and the env overrides after '@' stay; a model path is its own sweep.
    """
    head, at, overrides = spec.partition("@")
    name, colon, settings = head.partition(":")
    if not colon or head.endswith(".zip"):
        return spec
    kept = [item for item in settings.split(",") if "=" not in item]
    return name + (":" + ",".join(kept) if kept else "") + at + overrides


@dataclass(frozen=True)
class Frontier:
    """One sweep reduced to its Pareto points (median cost and error, lower is better).

    Args:
        name: The sweep's name.
        controllers: The controller of each point.
        cost: The points' costs, increasing.
        error: The points' errors, decreasing.
    """

    name: str
    controllers: tuple[str, ...]
    cost: np.ndarray
    error: np.ndarray

    @classmethod
    def of(cls, name: str, controllers: Sequence[str], cost: np.ndarray, error: np.ndarray) -> Frontier | None:
        """The Pareto points among ``(cost, error)``; None when none is finite and positive in cost.

        Args:
            name: The sweep's name.
            controllers: The controller of each point.
            cost: The points' median costs.
            error: The points' median errors.
        """
        cost = np.asarray(cost, dtype=float)
        error = np.maximum(np.asarray(error, dtype=float), TINY)
        keep = np.flatnonzero(np.isfinite(cost) & np.isfinite(error) & (cost > 0))
        if not len(keep):
            return None
        keep = keep[pareto_mask(cost[keep], error[keep])]
        keep = keep[np.lexsort((error[keep], cost[keep]))]
        _, first = np.unique(cost[keep], return_index=True)  # equal costs: the (equal) error of the first
        keep = keep[np.sort(first)]
        return cls(name, tuple(controllers[i] for i in keep), cost[keep], error[keep])

    def error_at(self, cost: float) -> tuple[float, tuple[str, ...]]:
        """The sweep's error at ``cost`` and the points it comes from.

        Log-log interpolation between its points, the best error of the points at or below ``cost`` beyond them,
        NaN below its cheapest point.
        """
        if not cost >= self.cost[0]:
            return math.nan, ()
        if cost >= self.cost[-1]:
            return float(self.error[-1]), (self.controllers[-1],)
        upper = int(np.searchsorted(self.cost, cost, side="right"))  # cost[upper - 1] <= cost < cost[upper]
        if cost == self.cost[upper - 1]:
            return float(self.error[upper - 1]), (self.controllers[upper - 1],)
        value = 10 ** np.interp(math.log10(cost), np.log10(self.cost), np.log10(self.error))
        return float(value), self.controllers[upper - 1:upper + 1]

    def cost_at(self, error: float) -> tuple[float, tuple[str, ...]]:
        """The sweep's cost at ``error`` and the points it comes from.

        Log-log interpolation, the cheapest point's cost above its error, NaN below the sweep's best error.
        """
        if not error >= self.error[-1]:
            return math.nan, ()
        if error >= self.error[0]:
            return float(self.cost[0]), (self.controllers[0],)
        lower = int(np.searchsorted(-self.error, -error, side="right"))  # error[lower - 1] >= error > error[lower]
        if error == self.error[lower - 1]:
            return float(self.cost[lower - 1]), (self.controllers[lower - 1],)
        value = 10 ** np.interp(-math.log10(error), -np.log10(self.error), np.log10(self.cost))
        return float(value), self.controllers[lower - 1:lower + 1]


@dataclass(frozen=True)
class EnvelopePoint:
    """A value of the union envelope, the sweep that attains it and the measured points it interpolates."""

    value: float
    sweep: str = ""
    controllers: tuple[str, ...] = ()


class UnionEnvelope:
    """The lower envelope of several sweeps of (median cost, median error) points, lower is better in both.

    Each sweep (``group`` of the controller's name, default ``sweep_name``) is reduced to its Pareto points and joined
    log-log, as ``sweep_comparison`` does; beyond its costliest point a sweep keeps its best error, above its
    cheapest point's error it keeps that cost (a point also achieves anything worse). The envelope is the pointwise
    minimum over the sweeps: ``error_at(cost)`` the least error any sweep reaches at that cost, ``cost_at(error)`` the
    least cost any sweep needs for that error. Sweeps are not interpolated into each other.

    Args:
        controllers: The controllers' names.
        cost: Their median costs.
        error: Their median errors.
        group: The sweep of a controller's name.

    Raises:
        ValueError: If the lengths differ or no point has a finite, positive cost.
    """

    def __init__(self, controllers: Sequence[str], cost: Sequence[float], error: Sequence[float],
                 group: Callable[[str], str] = sweep_name):
        controllers = list(controllers)
        cost, error = np.asarray(cost, dtype=float), np.asarray(error, dtype=float)
        if not (len(controllers) == len(cost) == len(error)):
            raise ValueError("controllers, cost and error must have the same length")
        names = [group(name) for name in controllers]
        self.frontiers = []
        for sweep in dict.fromkeys(names):
            members = [i for i, name in enumerate(names) if name == sweep]
            frontier = Frontier.of(sweep, [controllers[i] for i in members], cost[members], error[members])
            if frontier is not None:
                self.frontiers.append(frontier)
        if not self.frontiers:
            raise ValueError("the envelope needs at least one point of finite, positive cost")

    def error_at(self, cost: float) -> EnvelopePoint:
        """The least error of any sweep at ``cost`` (NaN below every sweep's cheapest point)."""
        return self._best([(frontier, *frontier.error_at(cost)) for frontier in self.frontiers])

    def cost_at(self, error: float) -> EnvelopePoint:
        """The least cost of any sweep for ``error`` (NaN below every sweep's best error)."""
        return self._best([(frontier, *frontier.cost_at(error)) for frontier in self.frontiers])

    @staticmethod
    def _best(candidates: list[tuple[Frontier, float, tuple[str, ...]]]) -> EnvelopePoint:
        finite = [candidate for candidate in candidates if math.isfinite(candidate[1])]
        if not finite:
            return EnvelopePoint(math.nan)
        frontier, value, controllers = min(finite, key=lambda candidate: candidate[1])
        return EnvelopePoint(value, frontier.name, controllers)

    def points(self) -> pd.DataFrame:
        """The measured points on the envelope (no other sweep below them), by cost: controller, sweep, cost, error."""
        rows = [(name, frontier.name, cost, error) for frontier in self.frontiers
                for name, cost, error in zip(frontier.controllers, frontier.cost, frontier.error)
                if self.error_at(cost).value >= error * (1 - 1e-12)]
        return pd.DataFrame(rows, columns=["controller", "sweep", "cost", "error"]).sort_values("cost",
                                                                                           ignore_index=True)

    def curve(self, samples: int = 400) -> tuple[np.ndarray, np.ndarray]:
        """The envelope as a polyline (cost, error) for plotting.

        It runs through every sweep's points and ``samples`` log-spaced costs from the cheapest point to the
        cheapest one with the envelope's best error, each with the envelope's error there.
        """
        costs = np.concatenate([frontier.cost for frontier in self.frontiers])
        errors = np.concatenate([frontier.error for frontier in self.frontiers])
        end = costs[errors == errors.min()].min()
        grid = np.unique(np.concatenate([costs, np.geomspace(costs.min(), end, samples)]))
        grid = grid[grid <= end]
        return grid, np.array([self.error_at(cost).value for cost in grid])

    def compare(self, cost: float, error: float) -> dict[str, Any]:
        """Where a point (median cost, median error) stands against the envelope.

        Returns:
            ``cost_ratio``: the point's cost over the envelope's cost at its error (< 1: cheaper; NaN: no sweep
            reaches its error); ``error_ratio``: the envelope's error at its cost over its error (> 1: more
            accurate; NaN: cheaper than every sweep); ``at_error`` and ``at_cost``: the ``EnvelopePoint`` each ratio
            compares with (the strongest sweep there and its measured points).
        """
        error = max(error, TINY)
        at_error, at_cost = self.cost_at(error), self.error_at(cost)
        return {"cost_ratio": cost / at_error.value, "error_ratio": at_cost.value / error,
                "at_error": at_error, "at_cost": at_cost}


def dominating(cost: float, error: float, controllers: Sequence[str], costs: Sequence[float],
               errors: Sequence[float]) -> list[str]:
    """The ``controllers`` whose (cost, error) is <= the point's in both and < in one (lower is better).

    Args:
        cost: The point's cost.
        error: The point's error.
        controllers: The candidates' names.
        costs: Their costs.
        errors: Their errors.
    """
    costs, errors = np.asarray(costs, dtype=float), np.asarray(errors, dtype=float)
    better = (costs <= cost) & (errors <= error) & ((costs < cost) | (errors < error))
    return [controllers[i] for i in np.flatnonzero(better)]


def envelope_comparison(table: pd.DataFrame, controllers: Sequence[str], baselines: Sequence[str], metric: str,
                        resamples: int = 1000, seed: int = 0, confidence: float = 0.95,
                        group: Callable[[str], str] = sweep_name) -> pd.DataFrame:
    """Each of ``controllers`` against the union envelope of the ``baselines`` (``UnionEnvelope``), with bootstrap CIs.

    The point estimates use every controller's median cost and median ``metric`` (lower is better) over the harness
    ``table``'s episodes. The bootstrap resamples the episode seeds with replacement (the same seeds for every
    controller: they are paired), recomputes every row's medians, the envelope and the ratios, ``resamples`` times.

    Args:
        table: Harness rows (``controller``, ``seed``, ``cost``, ``metric``); every controller on the same seeds.
        controllers: The rows to compare (e.g. the trained agents).
        baselines: The rows whose sweeps make the envelope.
        metric: The error column (lower is better).
        resamples: Bootstrap resamples (0: no CIs).
        seed: The bootstrap's random seed.
        confidence: The CIs' level (percentile intervals).
        group: The sweep of a controller's name.

    Returns:
        One row per controller: ``cost``, ``error`` (medians), ``cost_ratio`` and ``error_ratio`` with
        ``*_lo``/``*_hi`` CIs, ``p_behind`` (the resamples' share where the envelope is cheaper at the controller's
        error), ``strongest_at_error``/``_at_cost`` (the sweep attaining the envelope there), ``compared_at_error``/
        ``_at_cost`` (its measured points, comma-separated) and ``dominated_by`` (the measured baseline rows better
        in both medians, comma-separated).

    Raises:
        ValueError: If ``confidence`` is not in (0, 1), a named controller has no rows, or the controllers are not
            all on the same seeds.
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie in (0, 1), got {confidence}")
    names = list(dict.fromkeys([*controllers, *baselines]))
    rows = table[table["controller"].isin(names)]
    cost_table = rows.pivot_table(index="seed", columns="controller", values="cost", aggfunc="first", dropna=False)
    error_table = rows.pivot_table(index="seed", columns="controller", values=metric, aggfunc="first", dropna=False)
    missing = [name for name in names if name not in cost_table.columns]
    if missing:
        raise ValueError(f"the table has no rows of {missing}")
    cost_values = cost_table[names].to_numpy(dtype=float)
    error_values = error_table[names].to_numpy(dtype=float)
    if rows.groupby("controller")["seed"].nunique().nunique() != 1 or np.isnan(cost_values).any():
        raise ValueError("every controller needs a row on every seed (a paired bootstrap)")
    baseline_index = [names.index(name) for name in baselines]
    controller_index = [names.index(name) for name in controllers]

    def ratios(cost: np.ndarray, error: np.ndarray) -> list[tuple[dict[str, Any], list[str]]]:
        envelope = UnionEnvelope(baselines, cost[baseline_index], error[baseline_index], group)
        return [(envelope.compare(cost[i], error[i]),
                 dominating(cost[i], error[i], list(baselines), cost[baseline_index], error[baseline_index]))
                for i in controller_index]

    cost_median, error_median = np.nanmedian(cost_values, axis=0), np.nanmedian(error_values, axis=0)
    estimates = ratios(cost_median, error_median)
    samples = np.full((max(resamples, 0), len(controllers), 2), np.nan)
    if resamples > 0:
        draws = np.random.default_rng(seed).integers(len(cost_values), size=(resamples, len(cost_values)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column of a resample stays NaN
            resampled_cost = np.nanmedian(cost_values[draws], axis=1)
            resampled_error = np.nanmedian(error_values[draws], axis=1)
        for b in range(resamples):
            for j, (comparison, _) in enumerate(ratios(resampled_cost[b], resampled_error[b])):
                samples[b, j] = comparison["cost_ratio"], comparison["error_ratio"]
    tail = 100 * (1 - confidence) / 2
    out = []
    for j, (name, (comparison, better)) in enumerate(zip(controllers, estimates)):
        row = {"controller": name, "cost": cost_median[controller_index[j]],
               "error": error_median[controller_index[j]]}
        for k, key in enumerate(("cost_ratio", "error_ratio")):
            values = samples[:, j, k]
            finite = values[np.isfinite(values)]
            lo, hi = np.percentile(finite, [tail, 100 - tail]) if len(finite) else (math.nan, math.nan)
            row.update({key: comparison[key], f"{key}_lo": lo, f"{key}_hi": hi})
        behind = samples[:, j, 0]
        row["p_behind"] = float(np.mean(behind > 1)) if resamples > 0 else math.nan
        for where in ("error", "cost"):
            point: EnvelopePoint = comparison[f"at_{where}"]
            row[f"strongest_at_{where}"] = point.sweep
            row[f"compared_at_{where}"] = ", ".join(point.controllers)
        row["dominated_by"] = ", ".join(better)
        out.append(row)
    return pd.DataFrame(out)


def bootstrap_mean(values: Sequence[float] | np.ndarray, resamples: int = 2000, seed: int = 0,
                   level: float = 0.95) -> tuple[float, float, float]:
    """The mean of ``values`` and its percentile-bootstrap interval (Efron & Tibshirani 1993, ch. 13).

    Args:
        values: One value per episode (generation); NaNs are dropped.
        resamples: Bootstrap resamples of the episodes, with replacement.
        seed: The bootstrap's random seed.
        level: The interval's coverage.

    Returns:
        (mean, low, high); NaNs when no finite value is left, (mean, mean, mean) for one value.
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[~np.isnan(values)]
    if len(values) == 0:
        return math.nan, math.nan, math.nan
    indices = np.random.default_rng(seed).integers(len(values), size=(resamples, len(values)))
    means = values[indices].mean(axis=1)
    tail = 100 * (1 - level) / 2
    return float(values.mean()), float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))


def paired_difference(first: Sequence[float] | np.ndarray, second: Sequence[float] | np.ndarray,
                      resamples: int = 2000, seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """mean(first − second) over paired episodes (the same seeds) and its percentile-bootstrap interval.

    Raises:
        ValueError: If the two do not have one value per episode each.
    """
    first, second = np.asarray(first, dtype=np.float64), np.asarray(second, dtype=np.float64)
    if first.shape != second.shape or first.ndim != 1:
        raise ValueError(f"first and second must be paired 1-d arrays, got shapes {first.shape} and {second.shape}")
    return bootstrap_mean(first - second, resamples, seed, level)
