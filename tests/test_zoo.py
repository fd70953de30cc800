"""The model zoo: every env builds with defaults, every shipped agent and checkpoint runs, hashes are checked, runs
and checkpoint files are added and rebuilt with their recorded commands."""

import functools
import re
import shlex
import shutil

import gymnasium as gym
import pytest
import torch
import yaml
from gymnasium.utils.env_checker import check_env

from adaptstep.agents.controllers import agent_provenance, load_agent, parse_controller, run_record, trained_agent_kwargs
from adaptstep.agents.training import train
from adaptstep.cli import main
from adaptstep.core.registry import env_ids
from adaptstep.evaluation import play_episode
from adaptstep.planning.tasks import planning_task
from adaptstep.policies.demos import make_demos, save_demos
from adaptstep.zoo import (ZOO_DIR, add_files, add_run, describe_checkpoint, load_manifest, rebuild, resolve,
                           verified_folder)

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


def test_every_checkpoint_that_benchmarks_name_ships_in_the_zoo():
    """BENCHMARKS.md's rows come from shipped files: no path to a checkpoint, and every ``zoo:NAME`` exists."""
    text = (ZOO_DIR.parents[1] / "BENCHMARKS.md").read_text()
    paths = re.findall(r"[\w./-]+\.(?:zip|pt|pkl)\b", text)
    assert not paths, f"BENCHMARKS.md names checkpoints outside the zoo: {sorted(set(paths))}"
    named = set(re.findall(r"zoo:([\w.-]+)", text))
    assert named and named <= set(load_manifest()), sorted(named - set(load_manifest()))


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


CHECKPOINTS = [name for name, record in load_manifest().items() if record["kind"] != "agent"]


def refused(method):
    """``method`` (its signature kept) failing the test if called: a stored schedule must not be searched again."""
    @functools.wraps(method)
    def search(*args, **kwargs):
        raise AssertionError(f"{method.__name__} ran: a stored schedule was searched again")

    return search


def _one_episode(kind: str, spec: str, task: str | None, algo: str | None = None) -> int:
    """The decisions in one episode of a checkpoint's kind: env steps of a planner or dual system inside its env (a
    reactive bc/iql policy replanning at every step), policy calls of a Diffusion Policy off-env."""
    if kind == "diffusion-policy":
        from adaptstep.policies.bench import diffusion_policy_rows
        from adaptstep.policies.diffusion_policy import load_diffusion_policy

        return diffusion_policy_rows(load_diffusion_policy(spec, "cpu"), task, 0, 1, None)["calls"].iloc[0]
    if kind == "schedule":  # the search baseline it stores, on the env it was searched for
        from adaptstep.diffusion.stored_search import load_search

        key, _ = load_search(resolve(spec)[0])
        env_id, task = "adaptstep/DiffusionSampler-v0", None
        kwargs = {name: key[name] for name in ("model", "nfe", "batch_size", "reference_steps", "third_order")}
        controller = parse_controller(f"search:{key['method']},solver={key['solver']},batches={key['batches']}",
                                      env_id)
        kwargs.update(controller.env_overrides)
    else:
        env_id, kwargs, controller = {
            "planner": ("adaptstep/PlannerBudget-v0", {"planner": spec, "max_budget": 1,
                                                       "replan_every": 1 if algo in ("bc", "iql") else 8},
                        "fixed:budget=1"),
            "dual-system": ("adaptstep/DualSystem-v0", {"policy": spec, "device": "cpu"}, "refresh:every=4"),
        }[kind]
        controller = parse_controller(controller, env_id)
        if kind == "planner" and planning_task(task).condition == "return":
            kwargs["target_return"] = 1000.0  # hopper: a return to aim for (the bench passes the data's best)
    env = gym.make(env_id, **kwargs, **({"task": task} if task else {}))
    try:
        row = play_episode(env, controller, seed=0)
    finally:
        env.close()
    assert not row["failure"]
    return row["steps"]


@pytest.mark.parametrize("name", CHECKPOINTS)
def test_every_zoo_checkpoint_loads_as_its_kind_and_plays_an_episode(name, monkeypatch):
    import adaptstep.diffusion.search as search

    monkeypatch.setattr(search, "SEARCHES", {name: refused(method) for name, method in search.SEARCHES.items()})
    search._searched.cache_clear()
    record = load_manifest()[name]
    described = describe_checkpoint(resolve(f"zoo:{name}")[0])
    assert described["kind"] == record["kind"] and described["env"] == record["env"]
    assert _one_episode(record["kind"], f"zoo:{name}", record.get("task"), record.get("algo")) >= 1


@pytest.fixture(scope="module")
def robot_checkpoints(tmp_path_factory):
    """A tiny dual system and a tiny Diffusion Policy on reacher, trained by the CLI as a user would."""
    out = tmp_path_factory.mktemp("robot")
    demos = save_demos(make_demos("reacher", episodes=2, image_size=32, seed=0), out / "demos.hdf5")
    main(["train-robot", "dual-system", "--demos", str(demos), "--out", str(out / "dual.pt"), "--steps", "2",
          "--batch-size", "4", "--video-steps", "2", "--device", "cpu", "--no-progress", "--config", "history=4",
          "--config", "width=16", "--config", "heads=2", "--video-config", "width=8",
          "--video-config", "channel_mults=[1, 2]"])
    main(["train-robot", "diffusion-policy", "--demos", str(demos), "--out", str(out / "dp.pt"), "--steps", "2",
          "--batch-size", "4", "--device", "cpu", "--no-progress", "--config", "down_dims=[16, 32]"])
    return out


@pytest.mark.parametrize("file, kind, algo", [("dual.pt", "dual-system", "dual-system"),
                                              ("dp.pt", "diffusion-policy", "diffusion-policy")])
def test_existing_robot_checkpoints_are_added_with_their_command_and_play_an_episode(robot_checkpoints, tmp_path,
                                                                                      file, kind, algo):
    folder = tmp_path / "zoo"
    command = (f"adaptstep train-robot {algo} --demos {{work}}/demos.hdf5 --out {{out}}/{file} --steps 2 "
               "--device cpu --no-progress")
    record = add_files("tiny", [robot_checkpoints / file], [command], backs="a test", folder=folder)
    metadata = torch.load(robot_checkpoints / file, weights_only=True)["metadata"]
    seconds = metadata["seconds"] + metadata.get("video_model", {}).get("seconds", 0.0)
    assert (record["kind"], record["env"], record["task"], record["algo"]) == (
        kind, "adaptstep/DualSystem-v0", "reacher", algo)
    assert record["commands"] == [command] and record["train_seconds"] == round(seconds, 1) and seconds > 0
    path, _ = resolve("zoo:tiny", folder)
    assert path == folder / "tiny" / file and load_manifest(folder)["tiny"]["files"][file]["sha256"]
    assert _one_episode(kind, str(path), "reacher") >= 1


def test_an_existing_planner_is_added_checked_played_and_rebuilt_from_its_commands(tmp_path):
    work, out, folder = tmp_path / "work", tmp_path / "out", tmp_path / "zoo"
    commands = ["adaptstep data make maze2d-umaze-v1 --transitions 3000 --seed 1 --out {work}/data.hdf5 --no-progress",
                "adaptstep train-planner bc --data {work}/data.hdf5 --task maze2d-umaze-v1 --steps 20 "
                "--out {out}/bc.pt --device cpu --threads 1 --no-progress"]
    work.mkdir()
    out.mkdir()
    for command in commands:
        main(shlex.split(command.format(work=work, out=out))[1:])
    record = add_files("bc-tiny", [out / "bc.pt"], commands, backs="a test", folder=folder)
    assert (record["kind"], record["env"], record["task"], record["algo"]) == (
        "planner", "adaptstep/PlannerBudget-v0", "maze2d-umaze-v1", "bc")
    path, _ = resolve("zoo:bc-tiny", folder)
    assert _one_episode("planner", str(path), "maze2d-umaze-v1", "bc") == 300
    rebuilt = rebuild("bc-tiny", folder)
    assert rebuilt["commands"] == commands and rebuilt["train_seconds"] > 0 and rebuilt["kind"] == "planner"
    verified_folder("bc-tiny", folder)


def test_adding_checkpoints_names_what_is_wrong(tmp_path):
    folder, planner = tmp_path / "zoo", ZOO_DIR / "planner-maze2d-umaze" / "planner.pt"
    with pytest.raises(ValueError, match=r"the commands must write \['\{out\}/planner.pt'\]"):
        add_files("x", [planner], ["adaptstep train-planner bc --out {out}/other.pt"], folder=folder)
    with pytest.raises(ValueError, match="commands must be adaptstep command lines"):
        add_files("x", [planner], ["python train.py --out {out}/planner.pt"], folder=folder)
    with pytest.raises(ValueError, match="files must be existing checkpoint files"):
        add_files("x", [tmp_path / "none.pt"], ["adaptstep x {out}/none.pt"], folder=folder)
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="must be a checkpoint of one of .*planner.*dual-system"):
        add_files("x", [junk], ["adaptstep x {out}/junk.pt"], folder=folder)
    with pytest.raises(SystemExit, match="--command is for checkpoint files"):
        main(["zoo", "add", "x", str(tmp_path), "--command", "adaptstep x"])


def test_checkpoint_loaders_take_zoo_specs():
    from adaptstep.planning.planners import load_planner
    from adaptstep.policies.train import load_robot_policy

    assert load_planner("zoo:planner-maze2d-umaze", device="cpu").metadata["task"] == "maze2d-umaze"
    assert load_robot_policy("zoo:dual-system-reacher", device="cpu").metadata["demos_metadata"]["task"] == "reacher"
