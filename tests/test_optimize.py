"""adaptstep optimize: a 3-trial Optuna study on a tiny setting writes a valid agents/*.yml entry and prunes a bad
trial."""

import pytest
import yaml

from adaptstep.agents import optimize as search
from adaptstep.agents.training import check_hyperparameters, hyperparameters
from adaptstep.cli import main
from adaptstep.core.executors import make_executor
from adaptstep.threebody.initial_conditions import YEAR

optuna = pytest.importorskip("optuna", reason="Optuna is not installed (pip install 'adaptstep[scale]')")
ENV = "adaptstep/ThreeBody-v0"


def test_three_trials_write_a_valid_entry_and_prune_a_bad_one(tmp_path, monkeypatch, capsys):
    config = tmp_path / "ppo.yml"
    config.write_text(yaml.safe_dump({ENV: {"n_timesteps": 100000, "n_envs": 1, "env_kwargs": {"t_end": float(YEAR / 2)},
                                            "policy_kwargs": {"net_arch": [8]}, "device": "cpu"}}))
    numbers = []
    sample = search.SAMPLERS["ppo"]

    def small_rollouts(trial):  # the usual space, with rollouts short enough for a test
        numbers.append(trial.number)
        return {**sample(trial), "n_steps": 64, "batch_size": 32, "n_epochs": 1}

    real_value = search.trial_value
    monkeypatch.setitem(search.SAMPLERS, "ppo", small_rollouts)
    # the third trial is a bad one: its held-out energy error is reported as 1 (the others' are below 1e-2)
    monkeypatch.setattr(search, "trial_value", lambda row, metric: 1.0 if numbers[-1] == 2 else real_value(row, metric))
    out = tmp_path / "best.yml"
    main(["optimize", ENV, "--algo", "ppo", "--trials", "3", "--timesteps", "256", "--eval-freq", "64",
          "--eval-episodes", "2", "--startup-trials", "2", "--config", str(config), "--runs", str(tmp_path / "runs"),
          "--out", str(out), "--storage", f"sqlite:///{tmp_path / 'study.db'}"])
    assert "3 trials (1 pruned)" in capsys.readouterr().out
    study = optuna.load_study(study_name="ThreeBody-v0-ppo", storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert [trial.state.name for trial in study.trials] == ["COMPLETE", "COMPLETE", "PRUNED"]
    assert out.read_text().startswith(f"# adaptstep optimize {ENV} --algo ppo: best of 3 trials")
    entry = hyperparameters("ppo", ENV, out)
    check_hyperparameters(entry, "ppo", str(out))
    assert entry["env_kwargs"] == {"t_end": float(YEAR / 2)} and entry["n_timesteps"] == 100000
    assert entry["learning_rate"] == study.best_trial.params["learning_rate"]


def test_bad_settings_are_one_line(tmp_path):
    with pytest.raises(ValueError, match="trials must be an int >= 1"):
        search.optimize(ENV, "ppo", 0, 100, tmp_path, tmp_path / "x.yml")
    with pytest.raises(ValueError, match="algo must be one of"):
        search.optimize(ENV, "a2c", 1, 100, tmp_path, tmp_path / "x.yml")


def test_trials_run_as_parallel_tasks_on_one_shared_study(tmp_path):
    config = tmp_path / "ppo.yml"
    config.write_text(yaml.safe_dump({ENV: {"n_timesteps": 100000, "n_envs": 1, "n_steps": 32, "batch_size": 32,
                                            "n_epochs": 1, "env_kwargs": {"t_end": float(YEAR / 2)},
                                            "policy_kwargs": {"net_arch": [8]}, "device": "cpu"}}))
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    with pytest.raises(ValueError, match="pass --storage"):
        search.optimize(ENV, "ppo", 2, 64, tmp_path / "runs", tmp_path / "best.yml", config=config,
                        executor=make_executor("process", 2))
    study = search.optimize(ENV, "ppo", 2, 64, tmp_path / "runs", tmp_path / "best.yml", config=config,
                            storage=storage, eval_episodes=1, executor=make_executor("process", 2))
    assert [trial.state.name for trial in study.trials] == ["COMPLETE", "COMPLETE"]
    assert study.trials[0].params != study.trials[1].params  # each task samples with its own seed
    assert hyperparameters("ppo", ENV, tmp_path / "best.yml")["n_timesteps"] == 100000
