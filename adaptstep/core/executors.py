"""Where episodes run: in this process, in local worker processes, or on a Ray cluster, behind one interface.

Each harness row is a pure function of (env id, controller spec, env kwargs, seed), so an executor only maps a
picklable function over such tasks: ``SerialExecutor`` in order here, ``ProcessExecutor`` in N local processes
of one CPU thread each (forked on Linux, so a worker starts with this process's imports instead of redoing them),
``RayExecutor`` as Ray tasks of one CPU each on the cluster at ``address`` (a local Ray instance when None).
``evaluate`` hands them chunks: each controller's seeds cut into one contiguous share per worker
(``adaptstep.evaluation.run_episodes``). Results come back as they finish; the caller sorts them, so every executor
gives the same rows. Agents travel by path (their spec string), not by object reference: a task is a few hundred
bytes, each worker loads a model once and keeps it, and a ``zoo:NAME`` spec resolves against the worker's own
installed package with its sha256 checked, so every node plays the same bytes.

``evaluate`` (hence every benchmark built on it) takes the executor in use: the one passed, else the one a
``use_executor`` block set (``Benchmark.run`` sets it from ``--workers``, ``--executor``, ``--address``).
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Protocol

EXECUTORS = ("serial", "process", "ray")


class Executor(Protocol):
    """Maps a picklable function over tasks."""

    name: str
    workers: int

    def map(self, function: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[Any]:
        """``function(task)`` for every task, in the order they finish."""

    def close(self) -> None:
        """Release the workers."""


def single_thread() -> None:
    """Limit this process to one CPU thread (torch, and BLAS/OpenMP pools started later)."""
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[variable] = "1"  # read by torch and BLAS when they load
    torch = sys.modules.get("torch")  # core imports no torch; one already loaded is told directly
    if torch is not None:
        torch.set_num_threads(1)


class SerialExecutor:
    """Every task in this process, in order."""

    name, workers = "serial", 1

    def map(self, function: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[Any]:
        """``function(task)`` for each task in order."""
        return (function(task) for task in tasks)

    def close(self) -> None:
        """Nothing to release."""


def default_start_method() -> str:
    """``"fork"`` on Linux (a worker inherits the imports: no start-up of seconds), else ``"spawn"``."""
    return "fork" if sys.platform.startswith("linux") else "spawn"


class ProcessExecutor:
    """Tasks in ``workers`` local processes of one CPU thread each.

    Forked workers are safe with torch because each sets one thread before its first task (``single_thread``): a
    single-threaded torch runs every op in the calling thread and never touches the OpenMP pool it inherited
    (``tests/test_executors.py`` forks after multi-threaded torch work). The evaluation harness builds no env or
    GL context before it maps, so none is inherited either; pass ``start="spawn"`` from a process that holds one.

    Args:
        workers: The number of processes (>= 1).
        start: The ``multiprocessing`` start method; None for ``default_start_method()``.
    """

    name = "process"

    def __init__(self, workers: int, start: str | None = None):
        self.workers, self.start = workers, start or default_start_method()
        self._pool: ProcessPoolExecutor | None = None

    def map(self, function: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[Any]:
        """``function(task)`` for each task, as they finish; the processes stay up (and keep what they loaded)
        until ``close``."""
        if self._pool is None:
            context = multiprocessing.get_context(self.start)
            self._pool = ProcessPoolExecutor(self.workers, mp_context=context, initializer=single_thread)
        futures = [self._pool.submit(function, task) for task in tasks]
        for future in as_completed(futures):
            yield future.result()

    def close(self) -> None:
        """Stop the processes."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


class RayExecutor:
    """Tasks as Ray tasks of one CPU each, on the cluster at ``address`` or on a local Ray instance.

    Every node needs adaptstep installed (``pip install adaptstep[scale]``) and the files the specs name (a
    ``zoo:`` spec needs nothing more).

    Args:
        workers: CPUs of the local instance started when ``address`` is None (ignored on a cluster).
        address: A Ray cluster address (``ray://head:10001`` or ``head:6379``), ``"auto"`` for the cluster this
            machine belongs to, None to start a local instance.

    Raises:
        ValueError: If Ray is not installed.
    """

    name = "ray"

    def __init__(self, workers: int = 1, address: str | None = None):
        try:
            import ray
        except ImportError:
            raise ValueError("--executor ray needs Ray: pip install 'adaptstep[scale]'") from None
        self.ray, self.workers, self.address = ray, workers, address

    def _start(self) -> None:
        if not self.ray.is_initialized():
            options = {"num_cpus": self.workers} if self.address is None else {}
            where = f"the Ray cluster at {self.address}" if self.address else "a local Ray instance"
            try:
                self.ray.init(address=self.address, include_dashboard=False, log_to_driver=False,
                              runtime_env={"env_vars": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}}, **options)
            except Exception as error:  # Ray raises bare Exception, ConnectionError, RuntimeError, ... on start
                raise ValueError(f"--executor ray: {where} did not start or answer: {type(error).__name__}: "
                                 f"{str(error).splitlines()[0] if str(error) else ''}") from None

    def map(self, function: Callable[[Any], Any], tasks: Sequence[Any]) -> Iterator[Any]:
        """``function(task)`` for each task, as they finish."""
        self._start()
        remote = self.ray.remote(num_cpus=1, max_retries=0)(_in_one_thread)
        pending = [remote.remote(function, task) for task in tasks]
        while pending:
            done, pending = self.ray.wait(pending, num_returns=1)
            yield self.ray.get(done[0])

    def close(self) -> None:
        """Stop the local Ray instance this executor started (a cluster stays up)."""
        if self.ray.is_initialized():
            self.ray.shutdown()


def _in_one_thread(function: Callable[[Any], Any], task: Any) -> Any:
    single_thread()
    return function(task)


def make_executor(kind: str = "serial", workers: int = 1, address: str | None = None) -> Executor:
    """The executor ``kind`` (one of ``EXECUTORS``) with ``workers`` workers.

    Raises:
        ValueError: For an unknown kind, a worker count below 1, or an address without Ray.
    """
    if kind not in EXECUTORS:
        raise ValueError(f"executor must be one of {list(EXECUTORS)}, got {kind!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an int >= 1, got {workers!r}")
    if address is not None and kind != "ray":
        raise ValueError(f"--address needs --executor ray, got --executor {kind}")
    cores = os.cpu_count() or 1
    if kind == "process" and workers > cores:
        raise ValueError(f"--workers must be an int in [1, {cores}] (this machine's cores) for local processes, "
                         f"got {workers}")
    if kind == "ray":
        return RayExecutor(workers, address)
    return ProcessExecutor(workers) if kind == "process" else SerialExecutor()


_CURRENT: ContextVar[Executor | None] = ContextVar("adaptstep_executor", default=None)


@contextmanager
def use_executor(executor: Executor) -> Iterator[Executor]:
    """Within the block, ``evaluate`` runs its episodes on ``executor`` unless given another; closed after it."""
    token = _CURRENT.set(executor)
    try:
        yield executor
    finally:
        _CURRENT.reset(token)
        executor.close()


def current_executor() -> Executor:
    """The executor a ``use_executor`` block set, else a ``SerialExecutor``."""
    return _CURRENT.get() or SerialExecutor()


def add_executor_options(parser: argparse.ArgumentParser) -> None:
    """``--workers N``, ``--executor {serial,process,ray}`` and ``--address ADDR``."""
    parser.add_argument("--workers", type=int, default=1,
                        help="episodes at a time, each in a process of one CPU thread (default 1: in this process)")
    parser.add_argument("--executor", choices=EXECUTORS, default=None,
                        help="serial, process (local processes, the default with --workers > 1) or ray")
    parser.add_argument("--address", default=None,
                        help="with --executor ray: the cluster (ray://HEAD:10001, HEAD:6379 or auto); none "
                             "starts a local Ray instance of --workers CPUs")


def executor_from_args(args: argparse.Namespace) -> Executor:
    """The executor the options of ``add_executor_options`` name (serial where ``args`` lacks them, as a namespace
    built by hand for ``Benchmark.run`` may)."""
    workers = getattr(args, "workers", 1)
    kind = getattr(args, "executor", None) or ("process" if workers > 1 else "serial")
    return make_executor(kind, workers, getattr(args, "address", None))
