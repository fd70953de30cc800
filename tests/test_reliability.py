"""Nothing lost (issue 35): interrupted, concurrent and bad-input runs keep every result and fail with one clear line.

Each test reproduces one group of the issue's tries and asserts the new behaviour. The subprocess tests run the real
CLI (``python -m adaptstep.cli``) with a tiny PPO on a short ThreeBody-v0.
"""

import multiprocessing
import os
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import gymnasium as gym
import h5py
import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from adaptstep.agents.controllers import parse_controller
from adaptstep.agents.training import AtomicCheckpointCallback, next_run_folder, train
from adaptstep.cli import main
from adaptstep.core.report import write_section
from adaptstep.evaluation import evaluate, summarize
from adaptstep.io import FolderInUse, check_writable, folder_lock
from adaptstep.nn.checkpoints import read_checkpoint
from adaptstep.nn.training import NonFiniteLoss, training_step
from adaptstep.planning.datasets import OfflineDataset, read_d4rl, write_d4rl

ENV_ID = "adaptstep/ThreeBody-v0"
SHORT = {"t_end": 2.0, "interval": 1.0}
TINY = {"n_timesteps": 64, "policy": "MlpPolicy", "n_envs": 1, "n_steps": 32, "batch_size": 32, "n_epochs": 1,
        "env_kwargs": SHORT}
ROOT = Path(__file__).resolve().parents[1]


def write_config(path: Path, **changes) -> Path:
    path.write_text(yaml.safe_dump({ENV_ID: {**TINY, **changes}}))
    return path


def cli(*argv: str, cwd: Path) -> subprocess.Popen:
    """``adaptstep ARGV`` in a subprocess (the checkout first on the path)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    return subprocess.Popen([sys.executable, "-m", "adaptstep.cli", *argv], cwd=cwd, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_for(condition, timeout: float = 60.0, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the process ended early: {process.communicate()}")
        if time.monotonic() > deadline:
            raise AssertionError("timed out")
        time.sleep(0.05)


def one_line_error(capsys, argv: list[str]) -> str:
    """Run the CLI in-process; it must exit 2 with one ``error:`` line on stderr. Returns that line."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2, err
    assert err.startswith("error: ") or "usage:" in err, err
    assert "Traceback" not in err and (err.count("\n") == 0 or "usage:" in err), err
    return err


# -- 1, 2: train owns its folder; Ctrl-C saves; checkpoints are atomic -----------------------------------------------

@pytest.fixture(scope="module")
def long_config(tmp_path_factory):
    root = tmp_path_factory.mktemp("long")
    return write_config(root / "ppo.yml", n_timesteps=10_000_000, checkpoint_freq=32)


def test_concurrent_trains_into_one_folder_one_is_refused_and_ctrl_c_saves(tmp_path, long_config):
    out = tmp_path / "run"
    argv = ("train", ENV_ID, "--algo", "ppo", "--config", str(long_config), "--out", str(out), "--no-progress")
    runs = [cli(*argv, cwd=tmp_path), cli(*argv, "--overwrite", cwd=tmp_path)]  # started together
    try:
        wait_for(lambda: any(run.poll() is not None for run in runs))
        refused = next(run for run in runs if run.poll() is not None)
        winner = runs[1 - runs.index(refused)]
        _, err = refused.communicate()
        assert refused.returncode == 2
        assert err.strip() == (f"error: {out} is in use by another `adaptstep train` (pid {winner.pid}); wait for it "
                               "to end or choose another folder (--debug shows the traceback)")
        wait_for(lambda: any((out / "checkpoints").glob("model_*_steps.zip")), process=winner)
        run = yaml.safe_load((out / "run.yaml").read_text())
        assert run["complete"] is False and run["env_id"] == ENV_ID  # written before training
        winner.send_signal(signal.SIGINT)
        _, err = winner.communicate(timeout=120)
    finally:
        for process in runs:
            if process.poll() is None:
                process.kill()
    assert winner.returncode == 130, err
    assert err.strip().startswith(f"interrupted: saved {out / 'model.zip'} at step ")
    run = yaml.safe_load((out / "run.yaml").read_text())
    assert run["complete"] is False and run["interrupted_at"] > 0
    table = evaluate(ENV_ID, [str(out / "model.zip"), str(sorted((out / "checkpoints").glob("*.zip"))[0])],
                     episodes=1, env_kwargs=SHORT, progress=False)
    assert len(table) == 2 and (table["cost"] > 0).all()  # the interrupted run's model and checkpoints evaluate


def test_sigkill_during_train_leaves_no_truncated_file_under_a_final_name(tmp_path, long_config):
    out = tmp_path / "run"
    process = cli("train", ENV_ID, "--algo", "ppo", "--config", str(long_config), "--out", str(out), "--no-progress",
                  cwd=tmp_path)
    try:
        wait_for(lambda: len(list((out / "checkpoints").glob("model_*_steps.zip"))) >= 3, process=process)
    finally:
        process.kill()
        process.communicate()
    for checkpoint in (out / "checkpoints").glob("model_*_steps.zip"):
        with zipfile.ZipFile(checkpoint) as archive:
            assert archive.testzip() is None, checkpoint
    with folder_lock(out):  # the kernel released the killed run's lock
        pass


def test_the_checkpoint_writer_never_leaves_a_partial_file(tmp_path):
    class Model:
        num_timesteps = 64

        def get_vec_normalize_env(self):
            return None

        def save(self, path):
            Path(path).write_bytes(b"PK half a zip")
            raise KeyboardInterrupt  # killed in the middle of writing

    callback = AtomicCheckpointCallback(1, str(tmp_path), name_prefix="model")
    callback.model, callback.n_calls, callback.num_timesteps = Model(), 1, 64
    with pytest.raises(KeyboardInterrupt):
        callback._on_step()
    assert list(tmp_path.iterdir()) == []  # neither model_64_steps.zip nor the temporary remains


def test_a_folder_in_use_is_refused_naming_the_holder(tmp_path):
    with folder_lock(tmp_path / "run"):
        with pytest.raises(FolderInUse, match=rf"in use by another run \(pid {os.getpid()}\)"):
            with folder_lock(tmp_path / "run"):
                pass


def test_a_crashed_run_is_refused_and_overwrite_removes_its_files(tmp_path):
    config = write_config(tmp_path / "ppo.yml", checkpoint_freq=64)
    out = tmp_path / "run"
    (out / "checkpoints").mkdir(parents=True)
    (out / "checkpoints" / "model_999_steps.zip").write_bytes(b"old")  # a crashed run's checkpoint
    with pytest.raises(FileExistsError, match="holds the files of another run .*checkpoints.*--overwrite"):
        train(ENV_ID, "ppo", out, config=config, progress_bar=False)
    path = train(ENV_ID, "ppo", out, config=config, progress_bar=False, overwrite=True)
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["model_64_steps.zip"]
    assert yaml.safe_load((out / "run.yaml").read_text())["complete"] is True and path.is_file()


def test_runs_without_out_go_to_fresh_numbered_folders(tmp_path):
    assert next_run_folder(ENV_ID, "ppo", tmp_path) == tmp_path / "ThreeBody-v0-ppo_1"
    assert next_run_folder(ENV_ID, "ppo", tmp_path) == tmp_path / "ThreeBody-v0-ppo_2"
    assert next_run_folder(ENV_ID, "sac", tmp_path) == tmp_path / "ThreeBody-v0-sac_1"


# -- 3: evaluate streams its rows and resumes; benchmarks' sections never lose an update -------------------------------

def test_ctrl_c_during_evaluate_keeps_every_finished_row_and_resume_finishes(tmp_path):
    out = tmp_path / "rows.csv"
    process = cli("evaluate", ENV_ID, "--controller", "fixed:eta=0.0003", "--episodes", "100000",
                  "--out", str(out), "--no-progress", cwd=tmp_path)
    try:
        wait_for(lambda: out.is_file() and len(out.read_text().splitlines()) >= 4, process=process)
        process.send_signal(signal.SIGINT)
        _, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130 and "--resume" in err and "Traceback" not in err
    kept = pd.read_csv(out)
    assert len(kept) >= 3 and list(kept["seed"]) == list(range(len(kept)))  # every finished row, none torn
    episodes = len(kept) + 1
    table = evaluate(ENV_ID, ["fixed:eta=0.0003"], episodes=episodes, progress=False, out=out, resume=True)
    assert list(table["seed"]) == list(range(episodes)) and len(pd.read_csv(out)) == episodes


def test_resume_skips_finished_pairs_and_returns_the_table_of_a_fresh_run(tmp_path, monkeypatch):
    controllers = ["fixed:eta=0.1", "fixed:eta=0.01"]
    fresh = evaluate(ENV_ID, controllers, episodes=3, seed=5, env_kwargs=SHORT, progress=False,
                     out=tmp_path / "fresh.csv")
    streamed = pd.read_csv(tmp_path / "fresh.csv")
    deterministic = ["controller", "seed", "steps", "return", "cost", "energy_error", "time", "system_seed"]
    pd.testing.assert_frame_equal(streamed[deterministic], fresh[deterministic], check_dtype=False)
    partial = tmp_path / "partial.csv"
    partial.write_text("\n".join((tmp_path / "fresh.csv").read_text().splitlines()[:3]) + "\n")  # 2 rows kept
    import adaptstep.evaluation as harness

    played = []
    original = harness.play_episode
    monkeypatch.setattr(harness, "play_episode", lambda env, c, s: played.append((c.name, s)) or original(env, c, s))
    resumed = evaluate(ENV_ID, controllers, episodes=3, seed=5, env_kwargs=SHORT, progress=False, out=partial,
                       resume=True)
    assert len(played) == 4 and ("fixed:eta=0.1", 5) not in played
    pd.testing.assert_frame_equal(resumed[deterministic], fresh[deterministic], check_dtype=False)
    assert resumed.attrs["metrics"] == fresh.attrs["metrics"]


@pytest.mark.parametrize("kind", ["folder", "under a file", "read-only folder"])
def test_an_unwritable_out_fails_before_the_first_episode(kind, tmp_path, capsys, monkeypatch):
    import adaptstep.evaluation as harness

    monkeypatch.setattr(harness, "play_episode", lambda *args: pytest.fail("an episode ran"))
    if kind == "folder":
        out = tmp_path
    elif kind == "under a file":
        (tmp_path / "file").write_text("x")
        out = tmp_path / "file" / "rows.csv"
    else:
        if os.geteuid() == 0:
            pytest.skip("root writes into read-only folders")
        (tmp_path / "ro").mkdir(mode=0o500)
        out = tmp_path / "ro" / "rows.csv"
    err = one_line_error(capsys, ["evaluate", ENV_ID, "--controller", "fixed:eta=0.01", "--out", str(out),
                                  "--no-progress"])
    assert str(out) in err
    with pytest.raises(ValueError, match=str(out)):
        check_writable(out)


def _write_sections(path: str, name: str) -> None:
    for index in range(15):
        write_section(path, name, f"{name} {index}")


def test_two_concurrent_section_updates_both_land(tmp_path):
    path = str(tmp_path / "BENCHMARKS.md")
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_write_sections, args=(path, name)) for name in ("alpha", "beta", "gamma")]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
    text = Path(path).read_text()
    for name in ("alpha", "beta", "gamma"):
        assert f"<!-- bench:{name} -->\n{name} 14\n<!-- /bench:{name} -->" in text


# -- 4: data are validated before training; a non-finite loss stops training ----------------------------------------

def _dataset(n: int = 40) -> OfflineDataset:
    rng = np.random.default_rng(0)
    return OfflineDataset(observations=rng.normal(size=(n, 4)).astype(np.float32),
                          actions=rng.normal(size=(n, 2)).astype(np.float32), rewards=np.zeros(n, np.float32),
                          terminals=np.zeros(n, bool))


@pytest.mark.parametrize(("key", "index", "value", "where"),
                         [("observations", (12, 3), np.nan, r"index \(12, 3\) \(nan\)"), ("rewards", (7,), np.inf, "index 7"),
                          ("actions", (0, 1), -np.inf, r"index \(0, 1\)"), ("terminals", (5,), np.nan, "index 5")])
def test_a_dataset_with_nan_or_inf_is_refused_naming_file_key_and_index(key, index, value, where, tmp_path):
    dataset = _dataset()
    path = write_d4rl(dataset, tmp_path / "data.hdf5")
    with h5py.File(path, "r+") as file:
        data = file[key][()].astype(np.float32)
        data[index] = value
        del file[key]
        file.create_dataset(key, data=data)
    with pytest.raises(ValueError, match=rf"{path}: key '{key}' holds 1 non-finite values, the first at {where}"):
        read_d4rl(path)
    from adaptstep.planning.train import train_planner

    with pytest.raises(ValueError, match=f"key '{key}'"):  # train-planner reads (and refuses) it before training
        train_planner("diffuser", path, "maze2d-umaze", tmp_path / "planner.pt", steps=2, progress=False)
    assert not (tmp_path / "planner.pt").exists()


def test_demonstrations_with_nan_are_refused_naming_key_and_index():
    from adaptstep.policies.demos import Demonstrations

    proprio = np.zeros((6, 4), np.float32)
    proprio[4, 2] = np.nan
    with pytest.raises(ValueError, match=r"key 'proprio' holds 1 non-finite values, the first at index \(4, 2\)"):
        Demonstrations(images=np.zeros((6, 8, 8, 3), np.uint8), proprio=proprio, actions=np.zeros((6, 2), np.float32),
                       episode_ends=np.array([6], np.int64), success=np.array([True]))


def test_a_non_finite_loss_stops_training_before_the_weights_change():
    model = torch.nn.Linear(2, 1)
    ema = torch.nn.Linear(2, 1)
    optimizer = torch.optim.Adam(model.parameters())
    before = [p.detach().clone() for p in model.parameters()]
    loss = (model(torch.tensor([[np.nan, 1.0]])) ** 2).mean()
    with pytest.raises(NonFiniteLoss, match="at step 3"):
        training_step(model, ema, optimizer, loss, 3, 0.99)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


# -- 5: strict, typed configuration ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def normalized_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("normalized")
    config = write_config(root / "ppo.yml", normalize={"norm_obs": True, "norm_reward": False})
    return train(ENV_ID, "ppo", root / "run", config=config, seed=1, progress_bar=False)


def test_a_deleted_normalizer_is_an_error_not_a_silent_fallback(normalized_run, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(normalized_run.parent, copy)
    (copy / "vecnormalize.pkl").unlink()
    with pytest.raises(ValueError, match="vecnormalize.pkl is missing.*normalize: true"):
        parse_controller(str(copy / "model.zip"))
    (copy / "vecnormalize.pkl").write_bytes((normalized_run.parent / "vecnormalize.pkl").read_bytes()[:50])
    with pytest.raises(ValueError, match="vecnormalize.pkl is not a readable VecNormalize file"):
        parse_controller(str(copy / "model.zip"))


def test_an_edited_env_id_in_run_yaml_is_an_error(normalized_run, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(normalized_run.parent, copy)
    run = yaml.safe_load((copy / "run.yaml").read_text())
    (copy / "run.yaml").write_text(yaml.safe_dump({**run, "env_id": "adaptstep/BudgetForcing-v0"}))
    with pytest.raises(ValueError, match="trained on adaptstep/BudgetForcing-v0 .*not adaptstep/ThreeBody-v0"):
        evaluate(ENV_ID, [str(copy / "model.zip")], episodes=1, env_kwargs=SHORT, progress=False)


def test_a_damaged_model_zip_names_the_file(normalized_run, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(normalized_run.parent, copy)
    data = bytearray((copy / "model.zip").read_bytes())
    with zipfile.ZipFile(copy / "model.zip") as archive:
        info = archive.getinfo("policy.pth")
    extra = int.from_bytes(data[info.header_offset + 28:info.header_offset + 30], "little")
    data[info.header_offset + 30 + len(info.filename) + extra + info.compress_size // 2] ^= 0xFF  # inside policy.pth
    (copy / "model.zip").write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"{copy / 'model.zip'} is not a readable PPO model"):
        parse_controller(str(copy / "model.zip"))


@pytest.mark.parametrize(("value", "expected"), [("true", True), ("0", False), ("yes", True), ("No", False)])
def test_booleans_accept_only_true_false_1_0_yes_no(value, expected):
    assert gym.make(ENV_ID, **SHORT, discrete=value).unwrapped.discrete is expected
    with pytest.raises(ValueError, match="discrete must be true or false .*got 'maybe'"):
        gym.make(ENV_ID, **SHORT, discrete="maybe")


@pytest.mark.parametrize(
    ("changes", "match"),
    [({"gamma": -5}, r"gamma must be a finite number in \(0, 1\], got -5"),
     ({"learning_rate": "fast"}, "learning_rate must be a number > 0 or a linear schedule"),
     ({"n_envs": 0}, "n_envs must be an int >= 1, got 0"),
     ({"n_timesteps": "abc"}, "n_timesteps must be an int >= 1, got 'abc'"),
     ({"bogus": 1}, "unknown key 'bogus'; PPO takes"),
     ({"batch_size": 2.5}, "batch_size must be an int >= 1"),
     ({"gae_lambda": 2}, r"gae_lambda must be a finite number in \[0, 1\]")],
)
def test_bad_hyperparameters_are_refused_before_anything_is_built(changes, match, tmp_path):
    config = write_config(tmp_path / "ppo.yml", **changes)
    with pytest.raises(ValueError, match=match) as error:
        train(ENV_ID, "ppo", tmp_path / "run", config=config, progress_bar=False)
    assert str(config) in str(error.value)
    assert not (tmp_path / "run").exists()


def test_a_linear_learning_rate_schedule_trains(tmp_path):
    config = write_config(tmp_path / "ppo.yml", learning_rate="lin_3e-4", clip_range="lin_0.2")
    assert train(ENV_ID, "ppo", tmp_path / "run", config=config, progress_bar=False).is_file()


def test_a_yaml_syntax_error_names_the_file_and_line(tmp_path, capsys):
    config = tmp_path / "ppo.yml"
    config.write_text(f"{ENV_ID}:\n  n_timesteps: [64\n")
    err = one_line_error(capsys, ["train", ENV_ID, "--algo", "ppo", "--config", str(config), "--out",
                                  str(tmp_path / "run"), "--no-progress"])
    assert f"{config} is not valid YAML at line" in err


def test_repeated_keys_in_one_spec_are_an_error():
    with pytest.raises(ValueError, match="names 'eta' twice"):
        parse_controller("fixed:eta=0.01,eta=0.02")
    with pytest.raises(ValueError, match="names 't_end' twice"):
        parse_controller("fixed:eta=0.01@t_end=1,t_end=2")


@pytest.mark.parametrize("action", [np.array([0.5, 0.5, 0.5], np.float32), np.full((1, 1, 1), 0.5, np.float32),
                                    np.array([np.inf], np.float32), np.array([np.nan], np.float32)])
def test_the_budget_env_rejects_actions_of_the_wrong_shape_or_non_finite(action):
    env = gym.make("adaptstep/BudgetForcing-v0", budget=12, steps=2).unwrapped
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action must"):
        env.step(action)


@pytest.mark.parametrize("spec", ["refresh:every=4", "schedule:logsnr_uniform", "budget:rbf"])
def test_a_baseline_of_another_family_names_the_envs_it_fits(spec):
    with pytest.raises(ValueError, match=rf"controller '{spec}' is a baseline of the \w+ family: it fits "
                                         r"\['adaptstep/\w+-v0'\], not adaptstep/ThreeBody-v0"):
        evaluate(ENV_ID, [spec], episodes=1, env_kwargs=SHORT, progress=False)


def test_step_before_reset_is_a_clear_error():
    from adaptstep.planning.env import PlannerBudgetEnv
    from adaptstep.policies.env import DualSystemEnv

    for cls in (PlannerBudgetEnv, DualSystemEnv):
        env = cls.__new__(cls)  # the guard runs before anything the constructor builds
        env._started = False
        with pytest.raises(RuntimeError, match=r"call reset\(\) before step\(\)"):
            env.step(0)


# -- 7: honest results ----------------------------------------------------------------------------------------------

def test_a_failed_or_flagged_controller_is_never_on_the_pareto_front():
    rows = [("cheap-but-failed", 10, 500.0, "energy_error", ""), ("flagged", 5, 1e-12, "", "E0 ≈ 0"),
            ("good", 100, 1e-6, "", ""), ("better", 200, 1e-9, "", ""), ("dominated", 300, 1e-5, "", "")]
    table = pd.DataFrame([{"controller": name, "seed": 0, "steps": 1, "return": 0.0, "cost": cost,
                           "energy_error": error, "wall_time": 0.0, "episode_seconds": 0.0, "failure": failure,
                           "warning": warning} for name, cost, error, failure, warning in rows])
    table.attrs["metrics"] = {"energy_error": False}
    summary = summarize(table)
    assert summary["pareto"].to_dict() == {"cheap-but-failed": False, "flagged": False, "good": True,
                                           "better": True, "dominated": False}
    assert summary.loc["flagged", "warnings"] == 1 and summary.loc["cheap-but-failed", "failures"] == 1


def test_an_initial_energy_near_zero_is_flagged_in_the_row(monkeypatch):
    import adaptstep.threebody.env as module
    from adaptstep.threebody import ThreeBodySystem
    from adaptstep.threebody.process import energy_scale

    masses = np.ones(3)
    positions = np.array([[1.0, 0, 0], [-1.0, 0, 0], [0, 1.5, 0]])
    velocities = np.array([[0, 0.5, 0], [0, -0.5, 0], [0.0, 0, 0]])
    system = ThreeBodySystem(masses, positions, velocities)
    kinetic = 0.5 * float(np.sum(masses * np.sum(velocities**2, axis=1)))
    potential = energy_scale(system) - kinetic  # |U|
    scale = np.sqrt(potential * (1 + 1e-9) / kinetic)  # K' = |U|(1 + 1e-9): E0 ≈ 0
    zero = ThreeBodySystem(masses, positions, velocities * scale)
    assert abs(zero.energy()) < 1e-6 * energy_scale(zero)
    monkeypatch.setattr(module, "reference_initial_conditions", lambda seed: zero)
    table = evaluate(ENV_ID, ["fixed:eta=0.01"], episodes=1, env_kwargs={"t_end": 0.2, "interval": 0.1},
                     progress=False)
    assert table.loc[0, "warning"].startswith("E0 ≈ 0") and not summarize(table)["pareto"].any()


# -- 6: every error is one line at the CLI ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    ("argv", "names"),
    [(["evaluate", "adaptstep/Nope-v0", "--controller", "fixed:eta=0.01"], "env id must be one of"),
     (["evaluate", ENV_ID, "--controller", "fixed:eta=0.01@nokey=1"], "no env kwarg 'nokey'"),
     (["evaluate", ENV_ID, "--controller", "fixed:eta=0.01", "--env-kwarg", "bogus=1"], "no env kwarg 'bogus'"),
     (["evaluate", ENV_ID, "--controller", "oracle:mu=abc"], "mu of controller 'oracle:mu=abc'"),
     (["evaluate", ENV_ID, "--controller", "fixed:eta=abc"], "eta of controller 'fixed:eta=abc'"),
     (["evaluate", ENV_ID, "--controller", "fixed:eta=0.01", "--env-kwarg", "parameter_range=abc"],
      "parameter_range must be two numbers"),
     (["evaluate", ENV_ID, "--controller", "schedule:"], "baseline of the sampler family"),
     (["evaluate", ENV_ID, "--controller", "fixed:eta=0.01", "--env-kwarg", "t_end=[1"], "t_end"),
     (["evaluate", ENV_ID, "--controller", "fixed:eta=0.01", "--seed", "-1"], "--seed"),
     (["train", "adaptstep/Nope-v0", "--algo", "ppo"], "env id must be one of")],
)
def test_user_errors_are_one_line(argv, names, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = one_line_error(capsys, [*argv, "--no-progress"] if argv[0] == "evaluate" else argv)
    assert names in err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())  # no empty run folder


def test_debug_shows_the_traceback():
    with pytest.raises(ValueError, match="no env kwarg 'bogus'"):
        main(["--debug", "evaluate", ENV_ID, "--controller", "fixed:eta=0.01", "--env-kwarg", "bogus=1"])


def test_a_truncated_checkpoint_names_the_file(tmp_path):
    path = tmp_path / "planner.pt"
    torch.save({"config": {"kind": "diffuser"}, "state_dict": {"w": torch.zeros(1000)}}, path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(ValueError, match=f"{path} is not a readable planner checkpoint"):
        read_checkpoint(path, "planner")
    from adaptstep.planning.planners import load_planner

    with pytest.raises(ValueError, match=f"{path} is not a readable planner checkpoint"):
        load_planner(path)


def test_an_interrupted_benchmark_keeps_its_finished_rows(tmp_path):
    import argparse
    import json

    from adaptstep.core.bench import Benchmark

    class Interrupted(Benchmark):
        name = "interrupted"

        def measure(self, args):
            evaluate(ENV_ID, ["fixed:eta=0.1", "fixed:eta=0.01"], episodes=2, env_kwargs=SHORT, progress=False)
            raise KeyboardInterrupt

        def render(self, table, args):
            return ""

    args = argparse.Namespace(out=tmp_path / "BENCHMARKS.md", section=None, plot=None, episodes=2, seed=0)
    with pytest.raises(KeyboardInterrupt, match="interrupted.partial.jsonl"):
        Interrupted().run(args)
    rows = [json.loads(line) for line in (tmp_path / "benchmarks" / "interrupted.partial.jsonl").read_text().splitlines()]
    assert [(row["controller"], row["seed"]) for row in rows] == [("fixed:eta=0.1", 0), ("fixed:eta=0.1", 1),
                                                                ("fixed:eta=0.01", 0), ("fixed:eta=0.01", 1)]
    assert not (tmp_path / "BENCHMARKS.md").exists()
