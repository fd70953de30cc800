"""train --resume continues the step counter, the normalisation statistics and the learning-rate schedule, saving
atomically; --eval-freq keeps the best model on held-out seeds with its log."""

import pickle

import pytest
import yaml
from stable_baselines3 import PPO

from adaptstep.agents.controllers import parse_controller
from adaptstep.agents.training import StopOnInterrupt, train
from adaptstep.cli import main

ENV = "adaptstep/ThreeBody-v0"
HALF, TOTAL = 4096, 8192  # two PPO rollouts of 4 envs x 512 steps each


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "ppo.yml"
    path.write_text(yaml.safe_dump({ENV: {
        "n_timesteps": TOTAL, "n_envs": 4, "n_steps": 512, "batch_size": 256, "n_epochs": 1,
        "learning_rate": "lin_1e-3", "normalize": True, "checkpoint_freq": 2048,
        "policy_kwargs": {"net_arch": [16]}, "device": "cpu"}}))
    return path


def count(path):
    with open(path, "rb") as file:
        return pickle.load(file).obs_rms.count


def test_resume_continues_steps_statistics_and_schedule(config, tmp_path, monkeypatch):
    out = tmp_path / "run"

    def stop_half_way(self):
        if self.num_timesteps >= HALF:
            self.interrupted = True
        return not self.interrupted

    with monkeypatch.context() as patch:
        patch.setattr(StopOnInterrupt, "_on_step", stop_half_way)
        with pytest.raises(KeyboardInterrupt, match=f"at step {HALF}"):
            train(ENV, "ppo", out, config=config, progress_bar=False)
    first = yaml.safe_load((out / "run.yaml").read_text())
    assert first["interrupted_at"] == HALF and first["train_seconds"] > 0
    seen = count(out / "vecnormalize.pkl")

    progress, saved = [], []
    original_train, original_save = PPO.train, PPO.save
    monkeypatch.setattr(PPO, "train", lambda self: (progress.append(self._current_progress_remaining),
                                                    original_train(self))[1])
    monkeypatch.setattr(PPO, "save", lambda self, path, *a, **k: (saved.append(str(path)),
                                                                  original_save(self, path, *a, **k))[1])
    main(["train", ENV, "--algo", "ppo", "--resume", str(out), "--no-progress"])

    run = yaml.safe_load((out / "run.yaml").read_text())
    assert run["complete"] and run["resumed_from"] == {"checkpoint": "model.zip", "steps": HALF}
    assert "interrupted_at" not in run and run["train_seconds"] > first["train_seconds"]  # both segments' time
    model = PPO.load(out / "model.zip")
    assert model.num_timesteps == TOTAL
    # the schedule's progress goes on from half-way: 1 - 6144/8192 at the first update after resuming
    assert progress == pytest.approx([1 - 6144 / TOTAL, 1 - TOTAL / TOTAL])
    assert count(out / "vecnormalize.pkl") == pytest.approx(seen + HALF, abs=8)  # the same statistics, updated
    assert saved and all(path.split("/")[-1].startswith(".") for path in saved)  # only through atomic_path


def test_resume_picks_the_newest_complete_checkpoint(config, tmp_path):
    out = tmp_path / "run"
    train(ENV, "ppo", out, config=config, timesteps=HALF - 100, progress_bar=False)  # whole rollouts: to HALF
    assert yaml.safe_load((out / "run.yaml").read_text())["num_timesteps"] == HALF
    (out / "checkpoints" / f"model_vecnormalize_{HALF}_steps.pkl").unlink()  # that checkpoint is incomplete
    (out / "model.zip").unlink()
    train(ENV, "ppo", out, timesteps=TOTAL - 2048, resume=True, progress_bar=False)
    run = yaml.safe_load((out / "run.yaml").read_text())
    assert run["resumed_from"] == {"checkpoint": "checkpoints/model_2048_steps.zip", "steps": 2048}
    assert PPO.load(out / "model.zip").num_timesteps == TOTAL - 2048
    with pytest.raises(ValueError, match="not before the 2048 steps asked"):
        train(ENV, "ppo", out, timesteps=2048, resume=True, progress_bar=False)
    with pytest.raises(ValueError, match="has algo 'ppo', not 'sac'"):
        train(ENV, "sac", out, resume=True, progress_bar=False)


def test_eval_callback_keeps_the_best_model_and_its_log(config, tmp_path):
    out = tmp_path / "run"
    train(ENV, "ppo", out, config=config, timesteps=2048, eval_freq=1024, eval_episodes=2, progress_bar=False)
    lines = (out / "eval" / "log.csv").read_text().splitlines()
    assert lines[0] == "timesteps,mean_return,std_return,energy_error_median" and len(lines) == 3
    assert [int(line.split(",")[0]) for line in lines[1:]] == [1024, 2048]
    assert (out / "best_model.zip").is_file() and (out / "best_vecnormalize.pkl").is_file()
    controller = parse_controller(str(out / "best_model.zip"), ENV)
    assert controller.normalizer is not None
    with pytest.raises(ValueError, match="eval_episodes must be an int >= 1"):
        train(ENV, "ppo", tmp_path / "x", config=config, eval_freq=10, eval_episodes=0)
