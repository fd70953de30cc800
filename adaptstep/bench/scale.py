"""``adaptstep bench scale``: one ``adaptstep evaluate`` run serially, in local worker processes and on local Ray.

Each run is a fresh ``adaptstep evaluate`` process (start-up included, as a user meets it), the executors
interleaved round by round so that a change in the machine's load falls on all of them alike. A run records its
wall time, the CPU seconds of it and its children (``getrusage(RUSAGE_CHILDREN)``; a local Ray instance's
workers count once Ray has stopped them), the load average before it, and whether its rows equal the first serial
run's in every column but the wall-clock ones.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pandas as pd

from adaptstep.core.bench import Benchmark
from adaptstep.core.registry import env_class
from adaptstep.core.report import markdown_table
from adaptstep.evaluation import read_rows

EXECUTOR_FLAGS = {"serial": ["--workers", "1"], "process": ["--executor", "process"], "ray": ["--executor", "ray"]}
TARGETS = {"process": ("serial", 1.7, "at least"), "ray": ("process", 1.3, "within")}


class ScaleBenchmark(Benchmark):
    """Scale-out: the same evaluate serially, in --workers local processes and on a local Ray instance."""

    name = "scale"
    default_episodes = 40
    default_seed = 1000

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """The shared options (``--workers`` defaulting to 2 here), then this benchmark's."""
        super().add_arguments(parser)
        parser.set_defaults(workers=2)

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """The evaluate to time, the rounds and the executors."""
        parser.add_argument("--env", required=True, help="the env id evaluated")
        parser.add_argument("--controller", action="append", required=True, metavar="SPEC",
                            help="a controller of that evaluate (repeatable)")
        parser.add_argument("--env-kwarg", action="append", default=[], metavar="KEY=VALUE")
        parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds of every executor")
        parser.add_argument("--executors", default="serial,process,ray",
                            help=f"comma-separated, among {list(EXECUTOR_FLAGS)}")

    def heading(self, args: argparse.Namespace) -> str:
        """The section's heading."""
        return f"## Scale-out: `adaptstep evaluate {args.env}` serially, in local processes and on local Ray"

    def setting(self, args: argparse.Namespace) -> str:
        """The load averages the runs met."""
        loads = getattr(self, "_loads", [])
        return f"load average {min(loads):.1f}–{max(loads):.1f} before the runs" if loads else ""

    def measure(self, args: argparse.Namespace) -> pd.DataFrame:
        """One row per run: round, executor, wall and CPU seconds, load, rows and whether they equal serial's.

        Raises:
            ValueError: For ``--rounds`` below 1 or an unknown executor.
        """
        executors = [name.strip() for name in args.executors.split(",") if name.strip()]
        unknown = sorted(set(executors) - set(EXECUTOR_FLAGS))
        if args.rounds < 1 or unknown or not executors:
            raise ValueError(f"--rounds must be >= 1 and --executors among {list(EXECUTOR_FLAGS)}, got "
                             f"{args.rounds} and {args.executors!r}")
        runs, reference = [], None
        with tempfile.TemporaryDirectory() as scratch:
            for round_index in range(1, args.rounds + 1):
                for executor in executors:
                    run, rows = timed_evaluate(args, executor, Path(scratch) / f"{executor}-{round_index}.csv")
                    if rows is not None and reference is None and executor == "serial":
                        reference = rows
                    same = None if rows is None or reference is None else rows.equals(reference)
                    runs.append({"round": round_index, **run, "identical to serial": same})
        self._loads = [run["load"] for run in runs]
        return pd.DataFrame(runs)

    def render(self, table: pd.DataFrame, args: argparse.Namespace) -> str:
        """The runs, the medians per executor and the targets' verdicts."""
        done = table[table["error"] == ""]
        medians = done.groupby("executor", sort=False)[["wall s", "CPU s"]].median()
        lines = [f"{args.episodes} episodes (seeds {args.seed}…) × {len(args.controller)} controllers "
                 f"({', '.join(f'`{spec}`' for spec in args.controller)}); local processes and Ray with "
                 f"{args.workers} workers; {args.rounds} interleaved rounds. Each run is a fresh `adaptstep evaluate` "
                 "process (start-up included); CPU s counts it and its finished children.", "",
                 markdown_table(table, "{:.3g}"), "", markdown_table(medians.reset_index(), "{:.3g}"), ""]
        for executor, (against, ratio, how) in TARGETS.items():
            if executor in medians.index and against in medians.index:
                measured = medians.loc[against, "wall s"] / medians.loc[executor, "wall s"]
                if how == "at least":
                    verdict = "met" if measured >= ratio else "not met"
                    lines.append(f"- {executor} against {against}: {measured:.2f}× faster (median wall); target "
                                 f"≥ {ratio}×: {verdict}.")
                else:
                    slower = 1 / measured
                    verdict = "met" if slower <= ratio else "not met"
                    lines.append(f"- {executor} against {against}: {slower:.2f}× the wall time (median); target "
                                 f"within {ratio}×: {verdict}.")
        return "\n".join(lines)


def evaluate_command(args: argparse.Namespace, executor: str, out: Path) -> list[str]:
    """The ``adaptstep evaluate`` command line of one run."""
    command = [sys.executable, "-m", "adaptstep.cli", "evaluate", args.env, "--episodes", str(args.episodes),
               "--seed", str(args.seed), "--no-progress", "--out", str(out)]
    command += [item for spec in args.controller for item in ("--controller", spec)]
    command += [item for kwarg in args.env_kwarg for item in ("--env-kwarg", kwarg)]
    flags = EXECUTOR_FLAGS[executor]
    return command + flags + ([] if executor == "serial" else ["--workers", str(args.workers)])


def timed_evaluate(args: argparse.Namespace, executor: str, out: Path) -> tuple[dict[str, Any], pd.DataFrame | None]:
    """Run one evaluate; its timings and its rows without the wall-clock columns, sorted (None if it failed)."""
    load = os.getloadavg()[0]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    done = subprocess.run(evaluate_command(args, executor, out), capture_output=True, text=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    error = "" if done.returncode == 0 else (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
    run = {"executor": executor, "wall s": wall, "CPU s": cpu, "load": load, "error": error[:120]}
    return run, (None if error else deterministic_rows(read_rows(out), args.env))


def deterministic_rows(table: pd.DataFrame, env_id: str) -> pd.DataFrame:
    """``table`` without its wall-clock columns, sorted by controller and seed."""
    timing = {"wall_time", "episode_seconds", *env_class(env_id).timing_keys}
    kept = table.drop(columns=[column for column in table if column in timing])
    return kept.sort_values(["controller", "seed"], kind="stable").reset_index(drop=True)
