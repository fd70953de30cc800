"""Executors: serial, local processes and a local Ray instance give the same evaluate table."""

import re
import sys

import pandas as pd
import pytest

from adaptstep.core.executors import EXECUTORS, make_executor, use_executor
from adaptstep.core.registry import env_class
from adaptstep.evaluation import contiguous_shares, evaluate
from adaptstep.threebody.initial_conditions import YEAR

ENV = "adaptstep/ThreeBody-v0"
SPECS = ["fixed:eta=0.03", "ias15:epsilon=1e-5", "aarseth:eta=0.03"]
KWARGS = {"t_end": YEAR}  # one year: short episodes


def deterministic(table: pd.DataFrame) -> pd.DataFrame:
    """The table without its wall-clock columns."""
    timing = ["wall_time", "episode_seconds", *env_class(ENV).timing_keys]
    return table.drop(columns=[column for column in timing if column in table]).reset_index(drop=True)


@pytest.fixture(scope="module")
def serial():
    return deterministic(evaluate(ENV, SPECS, episodes=3, seed=5, env_kwargs=KWARGS, progress=False))


def test_local_processes_give_the_serial_rows(serial, tmp_path):
    with use_executor(make_executor("process", 2)):
        table = evaluate(ENV, SPECS, episodes=3, seed=5, env_kwargs=KWARGS, progress=False, out=tmp_path / "rows.csv")
    pd.testing.assert_frame_equal(deterministic(table), serial)
    assert len(pd.read_csv(tmp_path / "rows.csv")) == 9


def test_a_local_ray_instance_gives_the_serial_rows(serial):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'adaptstep[scale]')")
    try:
        executor = make_executor("ray", 2)
        executor._start()
    except Exception as error:  # Ray cannot start here (no shared memory, sandboxed ports, ...)
        pytest.skip(f"a local Ray instance cannot start here: {type(error).__name__}: {error}")
    with use_executor(executor):
        table = evaluate(ENV, SPECS, episodes=3, seed=5, env_kwargs=KWARGS, progress=False)
    assert not ray.is_initialized()  # use_executor stopped the local instance
    pd.testing.assert_frame_equal(deterministic(table), serial)


def test_bad_executor_settings_are_one_line():
    with pytest.raises(ValueError, match=re.escape(f"executor must be one of {list(EXECUTORS)}")):
        make_executor("dask")
    with pytest.raises(ValueError, match="workers must be an int >= 1"):
        make_executor("process", 0)
    with pytest.raises(ValueError, match="--address needs --executor ray"):
        make_executor("process", 1, address="head:6379")


def test_controller_objects_need_the_serial_executor():
    from adaptstep.agents.controllers import parse_controller

    with pytest.raises(ValueError, match="SPEC strings only"):
        evaluate(ENV, [parse_controller(SPECS[0])], episodes=1, executor=make_executor("process", 1))


def _torch_sum(size: int) -> tuple[float, int]:
    import torch

    generator = torch.Generator().manual_seed(size)
    matrix = torch.randn(size, size, generator=generator, dtype=torch.float64)
    return float((matrix @ matrix).sum()), torch.get_num_threads()


def test_forked_workers_run_torch_after_the_parent_used_several_threads():
    """The parent's OpenMP pool is busy before the fork; each worker runs torch on one thread and gives the parent's
    numbers (a worker that inherited a broken pool would hang: the pool's timeout fails the test instead)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        expected = [_torch_sum(size)[0] for size in (64, 96, 128)]  # multi-threaded matmuls in the parent
        executor = make_executor("process", 2)
        assert executor.start == ("fork" if sys.platform.startswith("linux") else "spawn")
        try:
            results = sorted(executor.map(_torch_sum, [64, 96, 128]))
        finally:
            executor.close()
    finally:
        torch.set_num_threads(threads)
    assert [value for value, _ in results] == pytest.approx(sorted(expected), rel=1e-12)
    assert {used for _, used in results} == {1}


@pytest.mark.parametrize("count, parts, sizes", [(40, 2, [20, 20]), (7, 3, [3, 2, 2]), (2, 4, [1, 1]), (0, 2, [])])
def test_seeds_are_cut_into_contiguous_shares(count, parts, sizes):
    seeds = list(range(100, 100 + count))
    shares = contiguous_shares(seeds, parts)
    assert [len(share) for share in shares] == sizes and [seed for share in shares for seed in share] == seeds
