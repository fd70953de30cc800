"""SB3 training glue, trained models as controllers (incl. cross-backend transfer), and the CLI."""

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
import yaml

from adaptstep.agents.controllers import parse_controller
from adaptstep.agents.training import hyperparameters, train
from adaptstep.cli import main
from adaptstep.core.settings import parse_settings
from adaptstep.evaluation import evaluate

ENV_ID = "adaptstep/ThreeBody-v0"
SHORT = {"t_end": 2.0, "interval": 1.0}
TINY = {
    "ppo": {"n_timesteps": 64, "policy": "MlpPolicy", "n_envs": 2, "n_steps": 16, "batch_size": 16, "n_epochs": 1,
            "checkpoint_freq": 32, "env_kwargs": SHORT},
    "sac": {"n_timesteps": 40, "policy": "MlpPolicy", "learning_starts": 10, "batch_size": 8, "buffer_size": 100,
            "env_kwargs": SHORT},
    "dqn": {"n_timesteps": 40, "policy": "MlpPolicy", "learning_starts": 10, "batch_size": 8, "buffer_size": 100,
            "env_kwargs": {**SHORT, "discrete": True}},
}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    models = {}
    for algo, params in TINY.items():
        config = root / f"{algo}.yml"
        config.write_text(yaml.safe_dump({ENV_ID: params}))
        models[algo] = train(ENV_ID, algo, root / algo, config=config, seed=1, progress_bar=False)
    return root, models


def test_training_writes_model_run_file_checkpoints_and_logs(trained):
    root, models = trained
    for algo, path in models.items():
        assert path.is_file() and path.name == "model.zip"
        run = yaml.safe_load((path.parent / "run.yaml").read_text())
        assert run["algo"] == algo and run["env_id"] == ENV_ID and run["timesteps"] == TINY[algo]["n_timesteps"]
        assert any((path.parent / "tb").rglob("events.out.tfevents.*"))
    assert sorted(p.name for p in (root / "ppo" / "checkpoints").iterdir()) == ["model_32_steps.zip",
                                                                               "model_64_steps.zip"]


def test_trained_models_run_in_the_harness_and_transfer_across_backends(trained):
    _, models = trained
    checkpoint = models["ppo"].parent / "checkpoints" / "model_32_steps.zip"
    specs = [str(models["ppo"]), f"{models['ppo']}@backend=rebound-ias15", f"{models['sac']}@backend=leapfrog",
             f"{models['dqn']}@discrete=true", str(checkpoint)]
    table = evaluate(ENV_ID, specs, episodes=2, seed=3, env_kwargs=SHORT, progress=False)
    assert len(table) == 10 and (table["cost"] > 0).all() and table["energy_error"].notna().all()


def test_model_on_a_mismatched_action_space_gets_a_clear_error(trained):
    _, models = trained
    with pytest.raises(ValueError, match="trained with"):
        evaluate(ENV_ID, [str(models["dqn"])], episodes=1, env_kwargs=SHORT, progress=False)


def test_training_never_overwrites_a_model(trained):
    root, models = trained
    before = models["sac"].read_bytes()
    with pytest.raises(FileExistsError, match="--overwrite"):
        train(ENV_ID, "sac", root / "sac", config=root / "sac.yml", progress_bar=False)
    assert models["sac"].read_bytes() == before


def test_normalize_saves_the_observation_statistics_and_the_controller_applies_them(tmp_path):
    config = tmp_path / "ppo.yml"
    config.write_text(yaml.safe_dump({ENV_ID: {**TINY["ppo"], "normalize": {"norm_obs": True, "norm_reward": False}}}))
    path = train(ENV_ID, "ppo", tmp_path / "run", config=config, seed=1, progress_bar=False)
    assert (path.parent / "vecnormalize.pkl").is_file()
    assert (path.parent / "checkpoints" / "model_vecnormalize_64_steps.pkl").is_file()
    controller = parse_controller(str(path))
    statistics = controller.normalizer.obs_rms
    assert statistics.count > 64 and np.any(statistics.var != 1.0)  # updated over the training's observations
    env = gym.make(ENV_ID, **SHORT)
    observation, _ = env.reset(seed=0)
    controller.reset(env)
    scaled = np.clip((observation - statistics.mean) / np.sqrt(statistics.var + controller.normalizer.epsilon),
                     -controller.normalizer.clip_obs, controller.normalizer.clip_obs)
    action = controller.act(observation)
    controller.normalizer = None  # the same model, given the observation scaled by hand
    np.testing.assert_array_equal(action, controller.act(scaled.astype(np.float32)))
    assert not np.array_equal(action, controller.act(observation))
    assert parse_controller(str(path.parent / "checkpoints" / "model_64_steps.zip")).normalizer is not None
    config.write_text(yaml.safe_dump({ENV_ID: {**TINY["ppo"], "normalize": "yes"}}))
    with pytest.raises(ValueError, match="normalize must be"):
        train(ENV_ID, "ppo", tmp_path / "bad", config=config, progress_bar=False)


def test_hyperparameter_lookup_errors(tmp_path):
    with pytest.raises(ValueError, match="algo must be one of"):
        hyperparameters("a2c", ENV_ID)
    with pytest.raises(ValueError, match="no entry for env"):
        hyperparameters("ppo", "adaptstep/Unknown-v0")
    for algo in ("ppo", "sac", "dqn"):
        assert hyperparameters(algo, ENV_ID)["n_timesteps"] > 0
    config = tmp_path / "bad.yml"
    config.write_text(yaml.safe_dump({ENV_ID: {"n_timesteps": 10, "vec_env": "ray"}}))
    with pytest.raises(ValueError, match="vec_env must be one of"):
        train(ENV_ID, "ppo", tmp_path / "out", config=config, progress_bar=False)


def test_cli_evaluate_writes_csv_and_plot(tmp_path, capsys):
    csv, png = tmp_path / "eval.csv", tmp_path / "front.png"
    main(["evaluate", ENV_ID, "--controller", "fixed:eta=0.1", "--controller", "fixed:eta=0.01", "--episodes", "2",
          "--env-kwarg", "t_end=2", "--env-kwarg", "interval=1", "--out", str(csv), "--plot", str(png),
          "--no-progress"])
    table = pd.read_csv(csv)
    assert len(table) == 4 and set(table["controller"]) == {"fixed:eta=0.1", "fixed:eta=0.01"}
    assert png.stat().st_size > 1000
    assert "cost_median" in capsys.readouterr().out


def test_cli_evaluate_with_the_task_spec_baselines(tmp_path):
    csv = tmp_path / "eval.csv"
    main(["evaluate", ENV_ID, "--baselines", "--episodes", "1", "--env-kwarg", "t_end=1", "--env-kwarg",
          "interval=1", "--out", str(csv), "--no-progress"])
    names = set(pd.read_csv(csv)["controller"])
    assert any(name.startswith("fixed:") for name in names) and any(name.startswith("ias15:") for name in names)


def test_cli_envs_lists_the_env(capsys):
    main(["envs"])
    assert ENV_ID in capsys.readouterr().out


@pytest.mark.parametrize(
    ("argv", "message"),
    [(["evaluate", ENV_ID, "--controller", "fixed:eta=0.01", "--env-kwarg", "backend=rk4"], "backend must be one of"),
     (["evaluate", ENV_ID, "--controller", "nope:x=1"], "one of the baselines"),
     (["evaluate", ENV_ID], "at least one --controller"),
     (["evaluate", ENV_ID, "--controller", "fixed:eta=0.01", "--env-kwarg", "t_end=[1, 2]"],  # a YAML list whole
      "t_end must be a finite number > 0, got [1, 2]"),
     (["train", ENV_ID, "--algo", "ppo", "--timesteps", "0", "--no-progress"], "timesteps must be >= 1")],
)
def test_cli_bad_input_exits_with_a_clear_message(argv, message, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code != 0
    captured = capsys.readouterr()
    assert message in captured.err + str(exit_info.value.code)


def test_cli_train_denoiser_writes_a_checkpoint_that_reloads(tmp_path, capsys):
    import torch

    from adaptstep.diffusion import load_denoiser

    out = tmp_path / "denoiser"
    argv = ["train-denoiser", "--data", "two-moons", "--out", str(out), "--steps", "30", "--batch-size", "64",
            "--device", "cpu", "--no-progress"]
    main(argv)
    assert "saved" in capsys.readouterr().out
    model = load_denoiser(out / "denoiser.pt", device="cpu")
    x0 = model.predict_x0(torch.zeros(4, 2), torch.tensor(0.5))
    assert x0.shape == (4, 2) and torch.isfinite(x0).all()
    with pytest.raises(SystemExit):
        main(argv)  # never overwrites without --overwrite
    assert "exists" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train-denoiser", "--data", "mnist", "--out", str(tmp_path / "x"), "--no-progress"])
    assert "digits" in capsys.readouterr().err


def test_env_kwargs_options_take_joined_pairs_and_bracketed_yaml_values():
    options = ["model=gmm-2d,nfe=4", "steps_choices=[2, 5]", "limits={low: 0.5, high: 2}", "asynchronous=true"]
    assert parse_settings(options, "--env-kwarg") == {"model": "gmm-2d", "nfe": 4, "steps_choices": [2, 5],
                                                      "limits": {"low": 0.5, "high": 2}, "asynchronous": True}
    with pytest.raises(ValueError, match="--env-kwarg must be KEY=VALUE"):
        parse_settings(["nfe"], "--env-kwarg")
