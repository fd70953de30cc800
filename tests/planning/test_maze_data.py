"""maze2d data as D4RL made it: the waypoint controller reaches goals, and `adaptstep data make` writes both formats."""

import numpy as np
import pytest

from adaptstep.cli import main
from adaptstep.planning import read_d4rl, read_minari
from adaptstep.planning.maze_data import WaypointController, make_maze_dataset

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:minari")


class _UMaze:
    """The U-maze grid of PointMaze_UMaze (1 = wall) with unit cells centred on integer coordinates."""

    maze_map = [[1, 1, 1, 1, 1], [1, 0, 0, 0, 1], [1, 1, 1, 0, 1], [1, 0, 0, 0, 1], [1, 1, 1, 1, 1]]

    @staticmethod
    def cell_xy_to_rowcol(xy):
        return np.array([2 - round(xy[1]), round(xy[0]) + 2])

    @staticmethod
    def cell_rowcol_to_xy(rowcol):
        return np.array([rowcol[1] - 2.0, 2.0 - rowcol[0]])


def test_waypoints_follow_the_shortest_path_around_the_wall():
    controller = WaypointController(_UMaze())
    assert controller._path((1, 1), (3, 1)) == [(1, 1), (1, 2), (1, 3), (2, 3), (3, 3), (3, 2), (3, 1)]
    action = controller.act(np.array([-1.0, 1.0]), np.zeros(2), goal=np.array([-1.0, -1.0]))
    np.testing.assert_allclose(action, [1.0, 0.0])  # toward cell (1, 2), to the right, not through the wall


def test_the_controller_reaches_goals_and_the_data_is_consistent():
    dataset = make_maze_dataset("maze2d-umaze", 1500, seed=0, episode_steps=300)
    assert dataset.rewards.sum() >= 10  # measured: about one goal per 75 steps
    assert len(dataset.episodes()) == 5 and dataset.timeouts.sum() == 5 and not dataset.terminals.any()
    inside = ~dataset.timeouts[:-1]
    np.testing.assert_array_equal(dataset.next_observations[:-1][inside], dataset.observations[1:][inside])
    assert np.abs(dataset.actions).max() <= 1.0 and dataset.observations.shape == (1500, 4)


def test_data_make_writes_d4rl_and_minari(tmp_path):
    out = tmp_path / "umaze.hdf5"
    argv = ["data", "make", "maze2d-umaze", "--transitions", "400", "--out", str(out), "--no-progress",
            "--minari-id", "adaptstep/maze2d-umaze-tiny-v0", "--minari-root", str(tmp_path / "minari")]
    main(argv)
    written = read_d4rl(out)
    assert len(written) == 400 and written.metadata["task"] == "maze2d-umaze"
    assert "adaptstep data make maze2d-umaze" in written.metadata["command"]
    back = read_minari("adaptstep/maze2d-umaze-tiny-v0", root=tmp_path / "minari")
    np.testing.assert_array_equal(back.observations, written.observations)
    with pytest.raises(SystemExit):
        main(argv)  # the file exists and --overwrite was not given


def test_bad_names_are_rejected():
    with pytest.raises(ValueError, match="name must be one of"):
        make_maze_dataset("maze2d-huge", 10)
    with pytest.raises(ValueError, match="transitions"):
        make_maze_dataset("maze2d-umaze", 0)
