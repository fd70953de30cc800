"""The base of every family's benchmark: measure a table of episodes with the harness, render it as markdown and
replace the benchmark's section of BENCHMARKS.md (``adaptstep bench NAME``)."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

import pandas as pd

from adaptstep.core.report import machine_description, section_figure, write_section


class Benchmark(ABC):
    """One benchmark. Subclasses set ``name`` (the family's name, also the default section), the defaults of the
    shared options, and implement ``add_options``, ``measure`` and ``render``.

    Shared options: ``--out`` (the markdown file, default BENCHMARKS.md), ``--section`` (its section name),
    ``--plot`` (the figure, default ``benchmarks/<section>.png`` beside ``--out``), ``--episodes`` and ``--seed``
    (the held-out episode seeds).
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
                            help="figure file (default benchmarks/<section>.png beside --out)")
        parser.add_argument("--episodes", type=int, default=self.default_episodes, help="held-out episodes per row")
        parser.add_argument("--seed", type=int, default=self.default_seed, help="first held-out seed")
        self.add_options(parser)

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """The benchmark's own options."""

    def section(self, args: argparse.Namespace) -> str:
        """The section of ``--out`` this run replaces."""
        return args.section or self.name

    def figure(self, args: argparse.Namespace) -> tuple[Path, str]:
        """Where the section's figure goes and its link relative to ``--out`` (see ``section_figure``)."""
        return section_figure(args.out, self.section(args), args.plot)

    @abstractmethod
    def measure(self, args: argparse.Namespace) -> pd.DataFrame:
        """The benchmark's table, one row per episode, from the harness (further tables in ``table.attrs``)."""

    @abstractmethod
    def render(self, table: pd.DataFrame, args: argparse.Namespace) -> str:
        """The section's markdown below its provenance lines (it may write its figure)."""

    def run(self, args: argparse.Namespace) -> pd.DataFrame:
        """Measure, render and write the section with its provenance; returns the table."""
        if args.episodes < 1:
            raise ValueError(f"--episodes must be >= 1, got {args.episodes}")
        started = time.perf_counter()
        table = self.measure(args)
        body = self.render(table, args)
        write_section(args.out, self.section(args),
                      f"{provenance(self.name, self.packages, time.perf_counter() - started)}\n\n{body}")
        print(body)
        return table


def bench_command(name: str, argv: list[str] | None = None) -> str:
    """The command line of this run, ``adaptstep bench NAME …`` (the options after NAME as given)."""
    argv = sys.argv if argv is None else argv
    options = argv[argv.index(name) + 1:] if name in argv[1:] else []
    return shlex.join(["adaptstep", "bench", name, *options])


def provenance(name: str, packages: tuple[str, ...], seconds: float | None = None) -> str:
    """The 'Command:' and 'Machine:' lines every section starts with."""
    took = f"; {seconds:.0f} s" if seconds is not None else ""
    return f"Command: `{bench_command(name)}`  \nMachine: {machine_description(packages)}{took}."
