"""``adaptstep bench NAME``: measured benchmarks, each writing its own section of BENCHMARKS.md."""

from __future__ import annotations

import argparse

from adaptstep.bench import budget, offline, robot, sampler, threebody

BENCHMARKS = {"threebody": threebody, "sampler": sampler, "budget": budget, "offline": offline, "robot": robot}


def add_bench_parsers(subparsers: argparse._SubParsersAction) -> None:
    bench = subparsers.add_parser("bench", help="run a benchmark and record it in BENCHMARKS.md")
    names = bench.add_subparsers(dest="benchmark", required=True)
    for name, module in BENCHMARKS.items():
        parser = names.add_parser(name, help=module.__doc__.strip().splitlines()[0])
        module.add_arguments(parser)
        parser.set_defaults(func=module.run)
