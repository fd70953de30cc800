"""adaptstep train-planner: both planners train from a D4RL file, save one checkpoint and load as planners."""

import numpy as np
import pytest
import torch

from adaptstep.cli import main
from adaptstep.planning.datasets import OfflineDataset, write_d4rl
from adaptstep.planning.maze_data import make_maze_dataset
from adaptstep.planning.planners import DiffuserPlanner, load_planner
from adaptstep.planning.train import train_planner
from adaptstep.planning.trajectory_diffuser import TrajectoryDiffuser

SMALL = {"horizon": 8, "steps": 30, "batch_size": 8, "dim": 8, "device": "cpu", "progress": False}


@pytest.fixture(scope="module")
def maze_file(tmp_path_factory):
    return write_d4rl(make_maze_dataset("maze2d-umaze", 600, seed=1, episode_steps=300),
                      tmp_path_factory.mktemp("data") / "maze.hdf5")


@pytest.fixture(scope="module")
def hopper_like_file(tmp_path_factory):
    """Random 11-d states and 3-d actions in 40-step episodes: the hopper task's shapes, rewards = 1st state (each
    state's successor the next row)."""
    rng = np.random.default_rng(0)
    observations = rng.normal(size=(400, 11)).astype(np.float32)
    dataset = OfflineDataset(observations, rng.uniform(-1, 1, (400, 3)).astype(np.float32), observations[:, 0],
                             np.zeros(400, bool), np.arange(400) % 40 == 39, next_observations=np.roll(observations, -1, 0))
    return write_d4rl(dataset, tmp_path_factory.mktemp("data") / "hopper.hdf5")


def test_cli_trains_both_planners_for_the_maze(maze_file, tmp_path):
    for kind in ("diffuser", "trajectory-diffuser"):
        out = tmp_path / f"{kind}.pt"
        main(["train-planner", kind, "--data", str(maze_file), "--task", "maze2d-umaze", "--out", str(out),
              "--horizon", "8", "--steps", "20", "--batch-size", "8", "--dim", "8", "--device", "cpu",
              "--no-progress"])
        planner = load_planner(out, device="cpu")
        assert planner.condition == "goal" and planner.metadata["task"] == "maze2d-umaze"
        assert planner.metadata["dataset_metadata"]["transitions"] == 600
        result = planner.plan(np.array([1.0, 1.0, 0.0, 0.0]), np.array([2.0, 1.0]), 2, seed=0)
        assert result.states.shape[1:] == (8, 4) and np.all(np.isfinite(result.actions))
    assert isinstance(planner, TrajectoryDiffuser)
    with pytest.raises(SystemExit):  # exists: refused without --overwrite, reported as an error
        main(["train-planner", "diffuser", "--data", str(maze_file), "--task", "maze2d-umaze", "--out", str(out)])


def test_return_task_diffuser_carries_its_value_guide(hopper_like_file, tmp_path):
    path = train_planner("diffuser", hopper_like_file, "hopper-medium", tmp_path / "d.pt", value_steps=30, **SMALL)
    planner = load_planner(path, device="cpu", samples=4)
    assert isinstance(planner, DiffuserPlanner) and planner.guide is not None
    assert planner.metadata["value"]["steps"] == 30
    result = planner.plan(np.zeros(11), None, 3, seed=0)
    assert result.states.shape == (4, 8, 11) and result.value_evaluations > 0
    unguided = train_planner("diffuser", hopper_like_file, "hopper-medium", tmp_path / "u.pt", value_steps=0, **SMALL)
    assert load_planner(unguided, device="cpu").guide is None


def test_bad_input_is_named(maze_file, tmp_path):
    with pytest.raises(ValueError, match="planner must be one of"):
        train_planner("decision-diffuser", maze_file, "maze2d-umaze", tmp_path / "x.pt", **SMALL)
    with pytest.raises(ValueError, match="task 'hopper-medium' needs 11 and 3"):
        train_planner("diffuser", maze_file, "hopper-medium", tmp_path / "x.pt", **SMALL)
    with pytest.raises(FileNotFoundError):
        train_planner("diffuser", tmp_path / "missing.hdf5", "maze2d-umaze", tmp_path / "x.pt", **SMALL)


def _weights(path) -> dict[str, torch.Tensor]:
    planner = load_planner(path, device="cpu")
    return (planner.model if isinstance(planner, DiffuserPlanner) else planner).state_dict()


@pytest.mark.parametrize("kind", ["diffuser", "trajectory-diffuser"])
def test_save_every_writes_the_curve_and_the_last_snapshot_continues_to_the_final_model(kind, maze_file, tmp_path):
    out = tmp_path / "p.pt"
    settings = {**SMALL, "steps": 7}
    train_planner(kind, maze_file, "maze2d-umaze", out, save_every=3, **settings)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["p-step3.pt", "p-step6.pt", "p.pt"]
    metadata = load_planner(tmp_path / "p-step3.pt", device="cpu").metadata
    assert metadata["steps"] == 3 and metadata["task"] == "maze2d-umaze"
    curve = metadata["loss_curves"]["diffusion"] if kind == "trajectory-diffuser" else metadata["loss_curve"]
    assert len(curve) == 3
    shorter = train_planner(kind, maze_file, "maze2d-umaze", tmp_path / "short.pt",
                            **{**SMALL, "steps": 3})  # the same seed: the step-3 snapshot is that run's model
    snapshot = _weights(tmp_path / "p-step3.pt")
    for name, weight in _weights(shorter).items():
        assert torch.equal(weight, snapshot[name]), name
    with pytest.raises(FileExistsError, match="p-step3.pt exists"):
        (tmp_path / "p.pt").unlink()
        train_planner(kind, maze_file, "maze2d-umaze", out, save_every=3, **settings)
    with pytest.raises(ValueError, match="save_every applies to the diffuser and trajectory-diffuser planners only"):
        train_planner("bc", maze_file, "maze2d-umaze", tmp_path / "d.pt", save_every=3, **settings)
    with pytest.raises(ValueError, match="save_every must be an int >= 0"):
        train_planner(kind, maze_file, "maze2d-umaze", tmp_path / "d.pt", save_every=-1, **settings)


def test_iql_on_a_return_task_saves_a_checkpoint_that_loads_safely(hopper_like_file, tmp_path):
    """Its reward scale (a numpy scalar from the data) is stored as a float: torch's weights-only loader takes it."""
    path = train_planner("iql", hopper_like_file, "hopper-medium", tmp_path / "iql.pt", steps=3, batch_size=8,
                         device="cpu", progress=False)
    planner = load_planner(path, device="cpu")
    assert type(planner.metadata["reward_scale"]) is float and planner.metadata["reward_scale"] > 0
    assert np.all(np.isfinite(planner.plan(np.zeros(11), None, 1, seed=0).actions))
