"""Executors: serial, local processes and a local Ray instance give the same evaluate table."""

import re

import pandas as pd
import pytest

from adaptstep.core.executors import EXECUTORS, make_executor, use_executor
from adaptstep.core.registry import env_class
from adaptstep.evaluation import evaluate
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
