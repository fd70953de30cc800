"""Timings that hold still on a busy machine: CPU thread time, interleaved rounds, minimum and median.

Wall-clock timings of short loops swing with whatever else the machine runs. ``time.thread_time`` counts only the
CPU time of the calling thread, and running every timed variant once per round, round after round, exposes them all
to the same load; the minimum over rounds estimates the undisturbed cost and the median how typical it is.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any

import pandas as pd

MIN_ROUNDS = 5


def thread_seconds(run: Callable[[], Any]) -> float:
    """The CPU seconds of the calling thread spent in ``run()``."""
    started = time.thread_time()
    run()
    return time.thread_time() - started


def interleaved(timers: Mapping[str, Callable[[], float]], rounds: int = MIN_ROUNDS,
                units: Mapping[str, float] | None = None) -> pd.DataFrame:
    """Run every timer once per round, for ``rounds`` rounds, and summarise each timer's seconds.

    Args:
        timers: Name -> a function that sets up, times its own work (e.g. with ``thread_seconds``) and returns
            the seconds.
        rounds: The rounds (>= ``MIN_ROUNDS``).
        units: Name -> the units of work of one call (e.g. env steps); the table then gives seconds per unit.

    Returns:
        One row per timer: ``name``, ``rounds``, ``min_seconds`` and ``median_seconds`` (per unit where given).

    Raises:
        ValueError: If ``rounds`` < ``MIN_ROUNDS``.
    """
    if not (isinstance(rounds, int) and rounds >= MIN_ROUNDS):
        raise ValueError(f"rounds must be an int >= {MIN_ROUNDS}, got {rounds!r}")
    seconds: dict[str, list[float]] = {name: [] for name in timers}
    for _ in range(rounds):
        for name, timer in timers.items():
            seconds[name].append(timer())
    rows = []
    for name, values in seconds.items():
        unit = (units or {}).get(name, 1.0)
        rows.append({"name": name, "rounds": rounds, "min_seconds": min(values) / unit,
                     "median_seconds": statistics.median(values) / unit})
    return pd.DataFrame(rows)
