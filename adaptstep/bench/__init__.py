"""``adaptstep bench NAME``: every registered family's benchmark (``adaptstep.core.bench.Benchmark``) and the
shared ones (``scale``: the executors on any env's evaluate).

Each writes its own section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse

from adaptstep.core.registry import benchmarks, load_object

SHARED_BENCHMARKS = {"scale": "adaptstep.bench.scale:ScaleBenchmark"}  # of no family


def add_bench_parsers(subparsers: argparse._SubParsersAction) -> None:
    """``adaptstep bench NAME [options]`` for every family that has a benchmark."""
    bench = subparsers.add_parser("bench", help="run a benchmark and record it in BENCHMARKS.md")
    names = bench.add_subparsers(dest="benchmark", required=True)
    for name, reference in {**benchmarks(), **SHARED_BENCHMARKS}.items():
        benchmark = load_object(reference)()
        parser = names.add_parser(name, help=(type(benchmark).__doc__ or name).strip().splitlines()[0])
        benchmark.add_arguments(parser)
        parser.set_defaults(func=benchmark.run)
