"""adaptstep sweep: K seeds through an executor, the same scores serially and in processes; mean, CI and IQM."""

import numpy as np
import pandas as pd
import pytest
import yaml

from adaptstep.agents.sweep import aggregate, sweep
from adaptstep.cli import main
from adaptstep.core.executors import make_executor
from adaptstep.threebody.initial_conditions import YEAR

ENV = "adaptstep/ThreeBody-v0"


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "ppo.yml"
    path.write_text(yaml.safe_dump({ENV: {"n_timesteps": 64, "n_envs": 1, "n_steps": 32, "batch_size": 32,
                                          "n_epochs": 1, "env_kwargs": {"t_end": float(YEAR)},
                                          "policy_kwargs": {"net_arch": [8]}, "device": "cpu"}}))
    return str(path)


def test_processes_give_the_serial_scores(config, tmp_path, capsys):
    serial = sweep(ENV, "ppo", [0, 1], tmp_path / "serial", config=config, episodes=2)
    parallel = sweep(ENV, "ppo", [0, 1], tmp_path / "parallel", config=config, episodes=2,
                     executor=make_executor("process", 2))
    pd.testing.assert_frame_equal(serial.drop(columns="model"), parallel.drop(columns="model"))
    assert serial["score"].nunique() == 2  # two seeds, two agents
    main(["sweep", ENV, "--algo", "ppo", "--seeds", "0..1", "--config", config, "--episodes", "2",
          "--out", str(tmp_path / "cli")])
    assert "over 2 seeds: mean" in capsys.readouterr().out
    assert list(pd.read_csv(tmp_path / "cli" / "sweep.csv")["score"]) == pytest.approx(list(serial["score"]))


def test_aggregate_gives_mean_ci_and_interquartile_mean():
    summary = aggregate(np.array([1.0, 2.0, 3.0, 100.0]))
    assert summary["mean"] == 26.5 and summary["iqm"] == 2.5  # the IQM ignores the outlying seed
    assert summary["ci_low"] <= summary["mean"] <= summary["ci_high"] and summary["seeds"] == 4


def test_bad_seed_lists_are_one_line(tmp_path, capsys):
    with pytest.raises(ValueError, match="seeds must be distinct"):
        sweep(ENV, "ppo", [1, 1], tmp_path)
    with pytest.raises(SystemExit):
        main(["sweep", ENV, "--algo", "ppo", "--seeds", "a..b"])
    assert "must be A..B or a comma list" in capsys.readouterr().err
