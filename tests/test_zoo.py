"""The model zoo: every env builds with defaults, every shipped agent runs, hashes are checked, runs are added and
rebuilt with their recorded command."""

import shutil

import gymnasium as gym
import pytest
import yaml
from gymnasium.utils.env_checker import check_env

from adaptstep.agents.controllers import agent_provenance, load_agent, parse_controller, run_record, trained_agent_kwargs
from adaptstep.agents.training import train
from adaptstep.cli import main
from adaptstep.core.registry import env_ids
from adaptstep.evaluation import play_episode
from adaptstep.zoo import ZOO_DIR, add_run, load_manifest, rebuild, resolve, verified_folder

AGENTS = [name for name, record in load_manifest().items() if record["kind"] == "agent"]


@pytest.mark.parametrize("env_id", sorted(env_ids()))
def test_every_registered_env_builds_and_checks_with_defaults(env_id):
    env = gym.make(env_id)
    try:
        check_env(env.unwrapped, skip_render_check=True)
    finally:
        env.close()


def test_the_zoo_ships_the_default_checkpoints_and_stays_small():
    entries = load_manifest()
    assert {"planner-maze2d-umaze", "dual-system-reacher"} <= set(entries)
    total = sum(item["bytes"] for record in entries.values() for item in record["files"].values())
    assert total < 30 * 2**20
    for name, record in entries.items():
        verified_folder(name)
        assert record["commands"] and record["train_seconds"] > 0 and record["env"] in env_ids()


@pytest.mark.parametrize("name", AGENTS)
def test_every_zoo_agent_loads_and_plays_an_episode(name):
    record = load_manifest()[name]
    controller = parse_controller(f"zoo:{name}", record["env"])
    env = gym.make(record["env"], **controller.env_overrides)
    try:
        row = play_episode(env, controller, seed=0)
    finally:
        env.close()
    assert row["controller"] == f"zoo:{name}" and row["steps"] >= 1 and not row["failure"]
    assert load_agent(f"zoo:{name}").num_timesteps == controller.model.num_timesteps


def test_run_records_and_provenance_read_zoo_specs():
    """Benches read a zoo agent's run.yaml (its agent kwargs, its provenance line) as they read a run folder's."""
    name = "budget-gmm2d-chains2"
    run_file, run = run_record(f"zoo:{name}")
    assert run_file == ZOO_DIR / name / "run.yaml" and run["env_id"] == "adaptstep/BudgetForcing-v0"
    assert trained_agent_kwargs(f"zoo:{name}")["chains"] == run["env_kwargs"]["chains"] == 2
    assert agent_provenance(f"zoo:{name}").startswith(f"- `zoo:{name}`: PPO, {run['timesteps']} steps")


def test_a_flipped_byte_names_the_file_and_the_rebuild_command(tmp_path):
    folder = tmp_path / "zoo"
    shutil.copytree(ZOO_DIR, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__", ".*"))
    name = "planner-maze2d-umaze"
    path = folder / name / load_manifest(folder)[name]["file"]
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"{path}.*adaptstep zoo rebuild {name}"):
        resolve(f"zoo:{name}", folder)


def test_controller_spec_errors_are_one_clear_line():
    with pytest.raises(ValueError, match="zoo entry must be one of"):
        parse_controller("zoo:no-such-agent")
    with pytest.raises(ValueError, match="not an agent"):
        parse_controller("zoo:planner-maze2d-umaze")


def test_a_run_is_added_listed_and_rebuilt_with_its_recorded_command(tmp_path, capsys):
    run = tmp_path / "run"
    train("adaptstep/ThreeBody-v0", "ppo", run, config="agents/demo.yml", timesteps=64, seed=3,
          progress_bar=False)
    folder = tmp_path / "zoo"
    record = add_run("tiny", run, backs="a test", overrides={"backend": "rebound-ias15"}, folder=folder)
    assert record["commands"][0].startswith("adaptstep train adaptstep/ThreeBody-v0 --algo ppo --config")
    assert "--timesteps 64 --seed 3" in record["commands"][0]
    path, overrides = resolve("zoo:tiny", folder)
    assert path == folder / "tiny" / "model.zip" and overrides == {"backend": "rebound-ias15"}
    config = yaml.safe_load((folder / "tiny" / "config.yml").read_text())
    assert config["adaptstep/ThreeBody-v0"]["n_steps"] == yaml.safe_load(
        (run / "run.yaml").read_text())["hyperparameters"]["n_steps"]
    with pytest.raises(ValueError, match="exists; pass --overwrite"):
        add_run("tiny", run, folder=folder)
    rebuilt = rebuild("tiny", folder)
    assert rebuilt["files"]["config.yml"] == record["files"]["config.yml"] and rebuilt["train_seconds"] > 0
    assert yaml.safe_load((folder / "tiny" / "run.yaml").read_text())["timesteps"] == 64
    main(["zoo", "list"])
    assert "planner-maze2d-umaze" in capsys.readouterr().out


def test_a_resumed_run_records_its_training_to_the_resumed_step_and_the_resumption(tmp_path):
    run = tmp_path / "run"
    train("adaptstep/ThreeBody-v0", "ppo", run, config="agents/demo.yml", timesteps=64, seed=3, progress_bar=False)
    done = yaml.safe_load((run / "run.yaml").read_text())["num_timesteps"]  # whole rollouts: more than 64
    train("adaptstep/ThreeBody-v0", "ppo", run, timesteps=2 * done, resume=True, progress_bar=False)
    record = add_run("resumed", run, folder=tmp_path / "zoo")
    first, second = record["commands"]
    assert f"--timesteps {done} --seed 3" in first and "--out {out}" in first
    assert second == (f"adaptstep train adaptstep/ThreeBody-v0 --algo ppo --resume {{out}} --timesteps {2 * done} "
                      "--no-progress")
    rebuild("resumed", tmp_path / "zoo")
    remade = yaml.safe_load((tmp_path / "zoo" / "resumed" / "run.yaml").read_text())
    assert remade["resumed_from"]["steps"] == done and remade["num_timesteps"] == 2 * done


def test_an_incomplete_run_is_refused(tmp_path):
    run = tmp_path / "run"
    train("adaptstep/ThreeBody-v0", "ppo", run, config="agents/demo.yml", timesteps=64, progress_bar=False)
    text = (run / "run.yaml").read_text().replace("complete: true", "complete: false")
    (run / "run.yaml").write_text(text)
    with pytest.raises(ValueError, match="complete: true"):
        add_run("x", run, folder=tmp_path / "zoo")
