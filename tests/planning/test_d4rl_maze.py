"""maze2d made and scored as D4RL did (d4rl_maze, d4rl_eval): controller, generator and evaluation protocol."""

import numpy as np
import pytest

from adaptstep.cli import main
from adaptstep.planning import read_d4rl
from adaptstep.planning.d4rl_eval import controller_scores, make_d4rl_eval_env, random_scores
from adaptstep.planning.d4rl_maze import (
    D4RLWaypointController,
    evaluation_goal,
    from_d4rl,
    make_d4rl_maze_dataset,
    maze_env,
    q_iteration,
    to_d4rl,
)

UMAZE = np.array([[1, 1, 1, 1, 1], [1, 0, 0, 0, 1], [1, 1, 1, 0, 1], [1, 0, 0, 0, 1], [1, 1, 1, 1, 1]])


@pytest.fixture(scope="module")
def umaze():
    env = maze_env("maze2d-umaze-v1")
    yield env.unwrapped.maze
    env.close()


@pytest.fixture(scope="module")
def dataset():
    return make_d4rl_maze_dataset("maze2d-umaze-v1", 6000, seed=3)


def test_the_frame_maps_d4rl_cells_to_pointmaze(umaze):
    centre = umaze.cell_rowcol_to_xy(np.array([1, 1]))
    np.testing.assert_allclose(from_d4rl(umaze, np.array([0.8, 0.8])), centre)  # D4RL's cell centre: index − 0.2
    np.testing.assert_allclose(evaluation_goal("maze2d-umaze-v1", umaze), centre + [0.2, -0.2])
    point = np.array([0.37, -1.21])
    np.testing.assert_allclose(from_d4rl(umaze, to_d4rl(umaze, point)), point)


def test_q_iteration_waypoints_go_around_the_wall_with_jitter_toward_lower_indices():
    controller = D4RLWaypointController(UMAZE, np.random.default_rng(0))
    controller.new_target(np.array([3.0, 1.0]), np.array([1.05, 0.93]))
    cells = [(3, 2), (3, 3), (2, 3), (1, 3), (1, 2), (1, 1)]
    assert len(controller.waypoints) == len(cells)
    for waypoint, cell in zip(controller.waypoints[:-1], cells[:-1]):
        assert np.all(waypoint <= cell) and np.all(waypoint >= np.array(cell) - 0.2)  # −U(0, 0.2) jitter
    np.testing.assert_array_equal(controller.waypoints[-1], [1.0, 1.0])  # the target's cell is not jittered
    assert q_iteration(UMAZE, (1, 1))[1, 1].argmax() == 0  # at the target the best move is to stay


def test_waypoints_advance_within_0_1_and_done_only_within_0_1_of_the_target():
    controller = D4RLWaypointController(UMAZE, np.random.default_rng(0))
    target = np.array([1.0, 1.0])
    controller.act(np.array([3.0, 1.0]), np.zeros(2), target)
    first = controller.waypoints[0].copy()
    controller.act(first + [0.0, 0.12], np.zeros(2), target)
    assert controller.index == 0  # 0.12 away: not yet
    controller.act(first + [0.0, 0.05], np.zeros(2), target)
    assert controller.index == 1
    _, done = controller.act(target + [0.0, 0.12], np.zeros(2), target)
    assert not done
    _, done = controller.act(target + [0.0, 0.11], np.zeros(2), target)
    assert not done
    action, done = controller.act(target + [0.0, 0.05], np.zeros(2), target)
    assert done
    np.testing.assert_allclose(action, [0.0, -0.5])  # held at the target: 10·(−0.05)


def test_one_long_trajectory_without_resets(dataset):
    np.testing.assert_allclose(dataset.next_observations[:-1], dataset.observations[1:])
    assert not dataset.terminals.any()


def test_goals_switch_only_at_timeouts_settled_or_after_the_step_limit(dataset, umaze):
    goals = dataset.infos["goal"]
    changes = np.flatnonzero(np.any(goals[1:] != goals[:-1], axis=1))
    np.testing.assert_array_equal(changes, np.flatnonzero(dataset.timeouts[:-1]))
    segments = np.diff(np.concatenate([[-1], np.flatnonzero(dataset.timeouts)]))
    assert segments.max() <= 301 and len(segments) >= 20  # measured: a goal about every 70 steps
    for end in np.flatnonzero(dataset.timeouts[:-1]):
        q = to_d4rl(umaze, dataset.observations[end, :2])
        cell = np.round(to_d4rl(umaze, goals[end]))
        settled = np.linalg.norm(q - cell) < 0.1
        assert settled or segments[np.searchsorted(np.flatnonzero(dataset.timeouts), end)] == 301


def test_rewards_are_relabelled_to_the_fixed_evaluation_goal(dataset, umaze):
    goal = evaluation_goal("maze2d-umaze-v1", umaze)
    np.testing.assert_array_equal(dataset.rewards,
                                  np.linalg.norm(dataset.observations[:, :2] - goal, axis=1) <= 0.5)
    assert 0.03 <= dataset.rewards.mean() <= 0.12  # measured 0.067 on 20k steps (seed 0)


def test_observation_layout_is_position_then_velocity(dataset):
    assert dataset.observations.shape == (6000, 4) and dataset.actions.shape == (6000, 2)
    step = dataset.next_observations[:, :2] - dataset.observations[:, :2]
    np.testing.assert_allclose(step, 0.01 * dataset.next_observations[:, 2:], atol=1e-5)  # Euler, dt = 0.01
    assert np.abs(dataset.actions).max() <= 1.0


def test_the_share_of_slow_transitions_is_small(dataset):
    # D4RL's goal counts as reached the first step the ball is within 0.1 of it (its "moved < 0.1 per step" check
    # is always true at speeds ≤ 5), so the data rarely shows the ball at rest: measured 0.2% of 20k steps below
    # speed 0.1 (seed 0); the tolerance allows up to 2%.
    speed = np.linalg.norm(dataset.observations[:, 2:], axis=1)
    assert (speed < 0.1).mean() <= 0.02


def test_the_protocol_fixes_the_goal_and_draws_the_start():
    env = make_d4rl_eval_env("maze2d-umaze-v1")
    starts, goals = set(), set()
    for seed in range(40):
        observation, _ = env.reset(seed=seed)
        goals.add(tuple(observation["desired_goal"]))
        starts.add(tuple(env.maze.cell_xy_to_rowcol(observation["achieved_goal"])))
    assert len(goals) == 1 and starts == {(1, 1), (1, 2), (1, 3), (2, 3), (3, 1), (3, 2), (3, 3)}
    steps, reward, done = 0, 0.0, False
    while not done:
        observation, r, terminated, truncated, _ = env.step(np.zeros(2, np.float32))
        steps, reward, done = steps + 1, reward + r, terminated or truncated
        assert r == float(np.linalg.norm(observation["achieved_goal"] - env.goal) <= 0.5)
    assert steps == 300
    env.close()


def test_the_data_controller_beats_random_actions_under_the_protocol():
    seeds = range(6)
    assert np.mean(controller_scores("maze2d-umaze-v1", seeds)) > np.mean(random_scores("maze2d-umaze-v1", seeds)) + 50


def test_data_make_writes_the_d4rl_procedure(tmp_path):
    out = tmp_path / "umaze-v1.hdf5"
    main(["data", "make", "maze2d-umaze-v1", "--transitions", "300", "--out", str(out), "--no-progress"])
    written = read_d4rl(out)
    assert len(written) == 300 and written.metadata["procedure"] == "d4rl"
    assert written.metadata["command"] == "adaptstep data make maze2d-umaze-v1 --transitions 300 --seed 0"


def test_bad_settings_are_named():
    with pytest.raises(ValueError, match="name must be one of"):
        make_d4rl_maze_dataset("maze2d-huge-v1", 10)
    with pytest.raises(ValueError, match="noise must be"):
        make_d4rl_maze_dataset("maze2d-umaze-v1", 10, noise=-1.0)


def test_one_trajectory_drops_the_goal_switch_timeouts(dataset):
    from adaptstep.planning.d4rl_maze import one_trajectory

    whole = one_trajectory(dataset)
    assert len(whole.episodes()) == 1 and whole.timeouts[-1] and dataset.timeouts.sum() > 1
    reset = make_d4rl_maze_dataset("maze2d-umaze-v1", 50, seed=0)
    reset.next_observations[10] += 1.0
    with pytest.raises(ValueError, match="resets between transitions"):
        one_trajectory(reset)
