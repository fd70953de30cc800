"""Where a controller stands against a sweep of fixed settings, from harness summaries (medians)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd


def _interpolate_log(x: float, xs: np.ndarray, ys: np.ndarray) -> float:
    """log-log interpolation of y(x) through the points (xs, ys); NaN outside their range."""
    order = np.argsort(xs)
    log_x, log_xs, log_ys = np.log10(x), np.log10(xs[order]), np.log10(ys[order])
    if not log_xs[0] <= log_x <= log_xs[-1]:
        return float("nan")
    return float(10 ** np.interp(log_x, log_xs, log_ys))


def sweep_comparison(summary: pd.DataFrame, controller: str, sweep: Sequence[str], metric: str) -> dict[str, float]:
    """Compare ``controller``'s median (cost, metric) with the sweep's curve of medians (lower is better).

    ``cost_ratio``: the controller's cost over the sweep's cost at the controller's error (< 1: cheaper).
    ``error_ratio``: the sweep's error at the controller's cost over the controller's error (> 1: more accurate).
    NaN where the controller lies outside the sweep's range.
    """
    cost, error = summary.loc[controller, ["cost_median", f"{metric}_median"]].astype(float)
    sweep_cost = summary.loc[list(sweep), "cost_median"].to_numpy(dtype=float)
    sweep_error = summary.loc[list(sweep), f"{metric}_median"].to_numpy(dtype=float)
    return {
        "cost_ratio": cost / _interpolate_log(error, sweep_error, sweep_cost),
        "error_ratio": _interpolate_log(cost, sweep_cost, sweep_error) / error,
    }
