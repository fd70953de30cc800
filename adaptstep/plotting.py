"""Plots read from the harness table: the quality-versus-compute Pareto plot, and the benchmarks' mean ± error plot."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from matplotlib.ticker import FuncFormatter  # noqa: E402

from adaptstep.evaluation import metric_directions, summarize  # noqa: E402
from adaptstep.io import atomic_path  # noqa: E402


def controller_family(name: str) -> str:
    """Group sweeps for plotting: ``fixed:eta=0.01`` → ``fixed``; overrides after '@' stay in the family."""
    head, at, overrides = name.partition("@")
    base = head.partition(":")[0] if ":" in head and not head.endswith(".zip") else head
    return base + (f"@{overrides}" if at else "")


LOG_FLOOR = 1e-17  # a median of exactly 0 (e.g. no energy drift at all) is drawn here on the log axis


def plot_pareto(table: pd.DataFrame, path: str | Path, metric: str | None = None, title: str = "",
                cost_unit: str = "", env_id: str | None = None,
                envelope: tuple[np.ndarray, np.ndarray] | None = None, envelope_label: str = "lower envelope",
                group: Callable[[str], str] = controller_family) -> Path:
    """Median ``metric`` against median cost per controller, with IQR bars and sweeps joined by lines.

    The axes are log-log, with a linear quality axis for metrics where higher is better, such as rewards.

    Args:
        table: Harness rows.
        path: The image to write.
        metric: The metric column; None for the env's first.
        title: The plot's title.
        cost_unit: The cost axis's unit.
        env_id: The env, needed only for a table read back from CSV.
        envelope: (cost, metric) of a curve drawn over the points as a dashed black line, e.g. the baselines' lower
            envelope (``adaptstep.analysis.UnionEnvelope.curve``).
        envelope_label: Its legend entry.
        group: The sweep a controller belongs to (one line each; default ``controller_family``).

    Returns:
        ``path``.
    """
    directions = metric_directions(table, env_id)
    metric = metric or next(iter(directions))
    summary = summarize(table, env_id).reset_index()
    quality = [f"{metric}_q25", f"{metric}_median", f"{metric}_q75"]
    log_quality = not directions[metric]
    if log_quality:
        summary[quality] = summary[quality].clip(lower=LOG_FLOOR)
    summary["family"] = summary["controller"].map(group)
    outside = summary["family"].nunique() > 8  # a long legend goes beside the axes, where it hides no point
    figure, axes = plt.subplots(figsize=(10, 5) if outside else (7, 5), dpi=120)
    if summary["family"].nunique() > 10:  # the default cycle repeats its 10 colours
        axes.set_prop_cycle(color=plt.get_cmap("tab20").colors)
    for family, rows in summary.groupby("family", sort=False):
        rows = rows.sort_values("cost_median")
        x, y = rows["cost_median"], rows[f"{metric}_median"]
        xerr = [x - rows["cost_q25"], rows["cost_q75"] - x]
        yerr = [y - rows[f"{metric}_q25"], rows[f"{metric}_q75"] - y]
        style = "-o" if len(rows) > 1 else "*"
        axes.errorbar(x, y, xerr=xerr, yerr=yerr, fmt=style, capsize=2, alpha=0.85, label=family,
                      markersize=6 if len(rows) > 1 else 14)
    if envelope is not None:
        axes.plot(*envelope, "k--", linewidth=1.5, alpha=0.8, label=envelope_label, zorder=5)
    cost_label = f"cost: {cost_unit}" if cost_unit else "cost"
    axes.set(xscale="log", yscale="log" if log_quality else "linear", xlabel=f"{cost_label} (median, IQR bars)",
             ylabel=f"{metric} (median, IQR bars)")
    axes.set_title(title or "quality vs compute, same seeds")
    axes.grid(True, which="both", alpha=0.3)
    if outside:
        axes.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    else:
        axes.legend(fontsize=8)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", bbox_inches="tight")
    plt.close(figure)
    return Path(path)


def _two_and_five(value: float, _position: int) -> str:
    """Label minor log ticks at 2 and 5 times a power of ten only (a narrow log range has no major tick)."""
    mantissa = value / 10 ** np.floor(np.log10(value))
    return f"{value:g}" if min(abs(mantissa - 2), abs(mantissa - 5)) < 1e-6 else ""


def plot_mean_against_cost(summary: pd.DataFrame, cost: str, mean: str, error: str, path: str | Path,
                           xlabel: str, ylabel: str, title: str) -> Path:
    """One point per ``method`` row of a benchmark summary: ``mean`` ± ``error`` against ``cost`` on a log axis.

    Rows of zero cost, which a log axis cannot show, are left out; the legend stands beside the axes.

    Args:
        summary: The summary, one row per method.
        cost: The cost column.
        mean: The mean's column.
        error: The error bars' column.
        path: The image to write.
        xlabel: The cost axis's label.
        ylabel: The mean's axis label.
        title: The plot's title.

    Returns:
        ``path``.
    """
    figure, axis = plt.subplots(figsize=(6, 4))
    rows = summary.set_index("method")
    colors = plt.get_cmap("tab10" if len(rows) <= 10 else "tab20").colors
    for (method, row), color in zip(rows.iterrows(), colors * (len(rows) // len(colors) + 1)):
        if row[cost] > 0:
            axis.errorbar(row[cost], row[mean], yerr=row[error], fmt="o", capsize=3, label=method, color=color)
    axis.set(xscale="log", xlabel=xlabel, ylabel=ylabel, title=title)
    axis.xaxis.set_minor_formatter(FuncFormatter(_two_and_five))
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1))
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png", dpi=120, bbox_inches="tight")
    plt.close(figure)
    return Path(path)
