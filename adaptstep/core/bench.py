"""The base of every family's benchmark (``adaptstep bench NAME``).

A benchmark measures a table of episodes with the harness, saves it as CSV, renders it as markdown and replaces
its section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import math
import shlex
import sys
import time
from abc import ABC, abstractmethod
from pathlib import Path, PurePosixPath
from typing import Any, ClassVar

import pandas as pd

from adaptstep.core.report import machine_description, section_figure, write_section
from adaptstep.core.settings import seed_argument
from adaptstep.core.executors import add_executor_options, executor_from_args, use_executor
from adaptstep.core.stream import row_stream
from adaptstep.io import atomic_path, check_writable


class Benchmark(ABC):
    """One benchmark, run by ``adaptstep bench NAME``.

    Subclasses set ``name`` and the defaults of the shared options, and implement ``add_options``, ``measure`` and
    ``render``.

    Shared options: ``--out`` (the markdown file, default BENCHMARKS.md), ``--section`` (its section name),
    ``--plot`` (the figure, default ``benchmarks/<section>.png`` beside ``--out``), ``--episodes`` and ``--seed``
    (the held-out episode seeds), and where the episodes run (``--workers``, ``--executor``, ``--address``: see
    ``adaptstep.core.executors``; every ``evaluate`` inside ``measure`` uses them). ``run`` checks its output files first, streams every harness row to
    ``<figure>.partial.jsonl`` while it measures (an interrupted run keeps them; removed once the table is written),
    then writes the measured table as CSV beside the figure (``<figure>.csv``).

    Attributes:
        name: The family's name, also the default section.
        default_episodes: Default of ``--episodes``, the held-out episodes per row.
        default_seed: Default of ``--seed``, the first held-out seed.
        packages: The packages whose versions go on the section's 'Machine:' line.
    """

    name: ClassVar[str]
    default_episodes: ClassVar[int] = 20
    default_seed: ClassVar[int] = 10_000
    packages: ClassVar[tuple[str, ...]] = ("numpy", "torch", "stable-baselines3", "gymnasium")

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """The shared options, then the benchmark's own (``add_options``)."""
        parser.add_argument("--out", type=Path, default=Path("BENCHMARKS.md"), help="markdown file to update")
        parser.add_argument("--section", default=None, help=f"its section (default {self.name}-…)")
        parser.add_argument("--plot", type=Path, default=None,
                            help="figure file (default benchmarks/<section>.png beside --out; the CSV goes beside it)")
        parser.add_argument("--episodes", type=int, default=self.default_episodes, help="held-out episodes per row")
        parser.add_argument("--seed", type=seed_argument, default=self.default_seed, help="first held-out seed")
        add_executor_options(parser)
        self.add_options(parser)

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """The benchmark's own options."""

    def section(self, args: argparse.Namespace) -> str:
        """The section of ``--out`` this run replaces."""
        return args.section or self.name

    def heading(self, args: argparse.Namespace) -> str:
        """The section's markdown heading, above its provenance lines."""
        return f"## {self.section(args)}"

    def setting(self, args: argparse.Namespace) -> str:
        """Facts of the run that belong on the 'Machine:' line beside the machine (e.g. where policies ran)."""
        return ""

    def figure(self, args: argparse.Namespace) -> tuple[Path, str]:
        """Where the section's figure goes and its link relative to ``--out`` (see ``section_figure``)."""
        return section_figure(args.out, self.section(args), args.plot)

    def table_file(self, args: argparse.Namespace) -> tuple[Path, str]:
        """Where ``run`` writes the measured table (the figure's path with ``.csv``) and its link from ``--out``."""
        figure, link = self.figure(args)
        return figure.with_suffix(".csv"), str(PurePosixPath(link).with_suffix(".csv"))

    @abstractmethod
    def measure(self, args: argparse.Namespace) -> pd.DataFrame:
        """The benchmark's table, one row per episode, from the harness (further tables in ``table.attrs``)."""

    @abstractmethod
    def render(self, table: pd.DataFrame, args: argparse.Namespace) -> str:
        """The section's markdown below its provenance lines (it may write its figure)."""

    def run(self, args: argparse.Namespace) -> pd.DataFrame:
        """Measure, save the table as CSV, render and write the section with its provenance.

        Returns:
            The measured table, one row per episode.

        Raises:
            ValueError: If ``--episodes`` is below 1.
        """
        if args.episodes < 1:
            raise ValueError(f"--episodes must be >= 1, got {args.episodes}")
        check_writable(args.out)  # before any episode: an unwritable file must not cost the measurement
        table_file = check_writable(self.table_file(args)[0], "the table file")
        partial = table_file.with_suffix(".partial.jsonl")
        started = time.perf_counter()
        try:
            with row_stream(partial), use_executor(executor_from_args(args)):
                table = self.measure(args)
        except KeyboardInterrupt:
            raise KeyboardInterrupt(f"every finished episode's row is in {partial}") from None
        write_table(table, table_file)
        partial.unlink(missing_ok=True)
        body = self.render(table, args)
        lines = provenance(self.name, self.packages, time.perf_counter() - started, self.setting(args))
        write_section(args.out, self.section(args), f"{self.heading(args)}\n\n{lines}\n\n{body}")
        print(body)
        return table


def off_env_row(controller: str, seed: int, cost: float, **values: Any) -> dict[str, Any]:
    """A row measured outside any env, with the columns of a harness row (``adaptstep.evaluation.play_episode``).

    For an off-env solver or a policy without the env's choice. What only an env episode has (steps, return, wall
    time) is NaN.

    Args:
        controller: The row's controller name.
        seed: The episode seed.
        cost: The cost, in the env's cost unit.
        **values: Its metrics, summary entries and timings.
    """
    nan = math.nan
    return {"controller": controller, "seed": seed, "steps": nan, "return": nan, "cost": cost, **values,
            "wall_time": nan, "episode_seconds": nan, "failure": "", "warning": ""}


def write_table(table: pd.DataFrame, path: Path) -> None:
    """Write ``table`` as CSV at ``path``, atomically, making its folder."""
    with atomic_path(path) as temporary:
        table.to_csv(temporary, index=False)


def bench_command(name: str, argv: list[str] | None = None) -> str:
    """The command line of this run, ``adaptstep bench NAME …`` (the options after NAME as given).

    Args:
        name: The benchmark's name.
        argv: The process's arguments; None for ``sys.argv``.
    """
    argv = sys.argv if argv is None else argv
    options = argv[argv.index(name) + 1:] if name in argv[1:] else []
    return shlex.join(["adaptstep", "bench", name, *options])


def provenance(name: str, packages: tuple[str, ...], seconds: float | None = None, setting: str = "") -> str:
    """The 'Command:' and 'Machine:' lines every section starts with.

    Args:
        name: The benchmark's name.
        packages: The packages whose versions the 'Machine:' line names.
        seconds: The run's duration, added to the 'Machine:' line; None leaves it out.
        setting: Further facts of the run for the 'Machine:' line; empty for none.
    """
    facts = "".join(f"; {fact}" for fact in (setting, f"{seconds:.0f} s" if seconds is not None else "") if fact)
    return f"Command: `{bench_command(name)}`  \nMachine: {machine_description(packages)}{facts}."
