"""maze2d as D4RL made and scored it, on Gymnasium-Robotics PointMaze.

Procedure (Fu et al. 2020; D4RL's ``scripts/generation/generate_maze2d_datasets.py``, ``waypoint_controller.py``,
``q_iteration.py``, ``relabel_maze2d_rewards.py``, ``pointmaze/maze_model.py``), re-implemented here:

- **Frame.** D4RL's ball coordinate ``q`` = (row, col) lies 0.2 past the cell's true centre in both axes (the
  centre is at q = (row − 0.2, col − 0.2): the ball body sits at 1.2, the walls at index + 1). PointMaze is D4RL's point mass
  (timestep 0.01, gear 100, damping 1, speed clipped to 5) in a centred frame rotated by 90°; ``to_d4rl`` and
  ``from_d4rl`` convert positions (velocities and actions rotate alike), so every offset below is D4RL's.
- **Controller.** Q-iteration (50 sweeps, discount 0.99) on the cell grid toward the target's cell; waypoints are
  the greedy path's cells, each jittered by −U(0, 0.2) per coordinate (the target's cell is not). A PD law
  a = clip(10·(waypoint − q) − 1·v, −1, 1) steers; the next waypoint is taken once the ball is within 0.1 of the
  current one and moved less than 0.1 in the last step. The goal counts as reached (``done``) within 0.1 of the
  target's cell point; then the ball is held there.
- **Data.** One long trajectory without resets: a target is drawn (an empty or goal cell + U(−0.1, 0.1)), the
  controller runs until ``done`` or the env's step limit since the last switch (300 / 600 / 800); that step is
  marked (``timeouts``; no MDP terminals) and the next target is drawn. D4RL's script adds no action noise (its
  ``--noisy`` option adds N(0, 0.5²)). Rewards are relabelled against the fixed evaluation goal: 1 when the
  recorded position is within 0.5 of it.
- **Evaluation.** The goal is fixed at the maze's G cell point (no noise), the start is any empty or goal cell
  + U(−0.1, 0.1) with velocity N(0, 0.1²), the reward is 1 per step within 0.5 of the goal, the episode runs
  300 / 600 / 800 steps (D4RL's maze2d-*-v1 envs, whose reference scores normalize it).

One D4RL quirk is not copied: after a goal switch its script records the pre-step state again.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

import numpy as np

from adaptstep.planning.datasets import OfflineDataset

D4RL_MAZES: dict[str, tuple[str, int, tuple[int, int]]] = {
    "maze2d-umaze-v1": ("PointMaze_UMaze-v3", 300, (1, 1)),
    "maze2d-medium-v1": ("PointMaze_Medium-v3", 600, (6, 6)),
    "maze2d-large-v1": ("PointMaze_Large-v3", 800, (7, 9)),
}
CELL_OFFSET = 0.2  # D4RL's cell index minus the cell's true centre, in both coordinates
SOLVE_THRESHOLD = 0.1
MOVE_THRESHOLD = 0.1
WAYPOINT_JITTER = 0.2
P_GAIN, D_GAIN = 10.0, 1.0
ACTIONS = ((0, 0), (-1, 0), (1, 0), (0, -1), (0, 1))  # stay, and the four neighbours, in grid (row, col) steps


def to_d4rl(maze: Any, xy: np.ndarray) -> np.ndarray:
    """D4RL's ball coordinate (cell units, centres at index − 0.2) of a PointMaze position ``xy`` (``maze``: ``env.unwrapped.maze``)."""
    row = (maze.y_map_center - xy[1]) / maze.maze_size_scaling - 0.5
    col = (xy[0] + maze.x_map_center) / maze.maze_size_scaling - 0.5
    return np.array([row, col]) - CELL_OFFSET


def from_d4rl(maze: Any, q: np.ndarray) -> np.ndarray:
    """The PointMaze position of D4RL's ball coordinate ``q`` (the inverse of ``to_d4rl``)."""
    row, col = np.asarray(q, dtype=float) + CELL_OFFSET
    return np.array([(col + 0.5) * maze.maze_size_scaling - maze.x_map_center,
                     maze.y_map_center - (row + 0.5) * maze.maze_size_scaling])


def velocity_to_d4rl(velocity: np.ndarray) -> np.ndarray:
    """A PointMaze velocity (vx, vy) in D4RL's (row, col) axes."""
    return np.array([-velocity[1], velocity[0]])


def action_from_d4rl(action: np.ndarray) -> np.ndarray:
    """A D4RL-frame action (row, col) as PointMaze's (x, y) force."""
    return np.array([action[1], -action[0]])


def free_cells(grid: np.ndarray) -> list[tuple[int, int]]:
    """The cells a ball may start or aim at, row-major (D4RL's sorted empty cells; its G cell is one of them)."""
    return [(int(r), int(c)) for r, c in zip(*np.nonzero(grid == 0))]


def q_iteration(grid: np.ndarray, target: tuple[int, int], sweeps: int = 50, discount: float = 0.99) -> np.ndarray:
    """Tabular Q-iteration on the cell grid: reward 1 for a move that lands on ``target``.

    Returns:
        Q of shape (rows, cols, 5) over ``ACTIONS`` (a move into a wall stays put).
    """
    rows, cols = grid.shape
    landing = np.zeros((rows, cols, len(ACTIONS), 2), dtype=int)
    for r, c in free_cells(grid):
        for a, (dr, dc) in enumerate(ACTIONS):
            landing[r, c, a] = (r + dr, c + dc) if grid[r + dr, c + dc] == 0 else (r, c)
    reward = np.zeros((rows, cols, len(ACTIONS)))
    reward[(landing[..., 0] == target[0]) & (landing[..., 1] == target[1])] = 1.0
    value = np.zeros((rows, cols))
    for _ in range(sweeps):
        q = reward + discount * value[landing[..., 0], landing[..., 1]]
        value = q.max(axis=2)
    return q


class D4RLWaypointController:
    """D4RL's maze2d controller: Q-iteration waypoints with jitter, advance and solve within 0.1, PD control.

    Works in D4RL's frame (``to_d4rl``). ``act`` returns (action, done) as D4RL's ``get_action`` does.

    Args:
        grid: The maze grid (1 = wall), e.g. ``np.asarray(env.unwrapped.maze.maze_map)``.
        rng: The generator of the waypoint jitter.
    """

    def __init__(self, grid: np.ndarray, rng: np.random.Generator) -> None:
        self.grid, self.rng = np.asarray(grid), rng
        self.target = np.full(2, -1000.0)
        self.waypoints: list[np.ndarray] = []
        self.index, self.previous = 0, np.zeros(2)

    @staticmethod
    def cell(q: np.ndarray) -> tuple[int, int]:
        """D4RL's ``gridify_state``: the rounded ball coordinate."""
        return int(round(q[0])), int(round(q[1]))

    def new_target(self, q: np.ndarray, target: np.ndarray) -> None:
        """Plan waypoints from ``q``'s cell to ``target``'s by the greedy Q-iteration path (at most 100 moves)."""
        start, goal = self.cell(q), self.cell(target)
        values = q_iteration(self.grid, goal)
        waypoints, cell = [], start
        for _ in range(100):
            dr, dc = ACTIONS[int(np.argmax(values[cell]))]
            cell = (cell[0] + dr, cell[1] + dc) if self.grid[cell[0] + dr, cell[1] + dc] == 0 else cell
            point = np.array(cell, dtype=float)
            if cell != goal:
                point = point - self.rng.uniform(size=2) * WAYPOINT_JITTER
            waypoints.append(point)
            if cell == goal:
                break
        self.waypoints, self.index = waypoints, 0
        self.previous, self.target = np.array(start, dtype=float), np.array(goal, dtype=float)

    def act(self, q: np.ndarray, velocity: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, bool]:
        """The D4RL-frame action toward the current waypoint and whether the target is reached and still.

        Args:
            q: The ball's D4RL coordinate.
            velocity: Its velocity in D4RL's axes.
            target: The target's D4RL coordinate (a new cell replans).
        """
        if np.linalg.norm(self.target - np.array(self.cell(target))) > 1e-3:
            self.new_target(q, target)
        moved = np.linalg.norm(self.previous - q)
        solved = np.linalg.norm(q - self.target) < SOLVE_THRESHOLD and moved < MOVE_THRESHOLD
        waypoint = self.target if solved else self.waypoints[self.index]
        action = P_GAIN * (waypoint - q) - D_GAIN * velocity
        if not solved and np.linalg.norm(q - waypoint) < SOLVE_THRESHOLD and moved < MOVE_THRESHOLD:
            self.index = min(self.index + 1, len(self.waypoints) - 1)
        self.previous = np.array(q, dtype=float)
        return np.clip(action, -1.0, 1.0), solved


def maze_env(name: str, max_episode_steps: int | None = None) -> Any:
    """The PointMaze env of D4RL maze ``name`` (a key of ``D4RL_MAZES``), no goal resampling of its own."""
    import gymnasium as gym
    import gymnasium_robotics

    if name not in D4RL_MAZES:
        raise ValueError(f"name must be one of {sorted(D4RL_MAZES)}, got {name!r}")
    gym.register_envs(gymnasium_robotics)
    return gym.make(D4RL_MAZES[name][0], continuing_task=True, reset_target=False,
                    max_episode_steps=max_episode_steps)


def place_ball(env: Any, xy: np.ndarray, velocity: np.ndarray) -> dict[str, np.ndarray]:
    """Put the ball of PointMaze ``env`` at ``xy`` with ``velocity``; returns the observation dict."""
    point = env.unwrapped.point_env
    point.set_state(np.asarray(xy, dtype=float), np.asarray(velocity, dtype=float))
    return env.unwrapped._get_obs(np.concatenate([point.data.qpos, point.data.qvel]).ravel())


def set_goal(env: Any, xy: np.ndarray) -> None:
    """Make ``xy`` the goal of PointMaze ``env`` (its marker follows)."""
    env.unwrapped.goal = np.asarray(xy, dtype=float)
    env.unwrapped.update_target_site_pos()


def evaluation_goal(name: str, maze: Any) -> np.ndarray:
    """The fixed evaluation goal of maze ``name``: the G cell's point in PointMaze's frame."""
    return from_d4rl(maze, np.array(D4RL_MAZES[name][2], dtype=float))


def one_trajectory(dataset: OfflineDataset) -> OfflineDataset:
    """``dataset`` with its goal-switch timeouts removed: one trajectory, as it was recorded (no resets).

    Planners train on windows that may cross goal switches (Diffuser's maze2d loader likewise ignores D4RL's
    timeouts); their goal is the window's own end.

    Raises:
        ValueError: If some transition's next observation is not the following observation (the data resets).
    """
    if dataset.next_observations is None or not np.allclose(dataset.next_observations[:-1],
                                                            dataset.observations[1:], atol=1e-5):
        raise ValueError("dataset resets between transitions; only D4RL-procedure maze2d data is one trajectory")
    timeouts = np.zeros(len(dataset), dtype=bool)
    timeouts[-1] = True
    return OfflineDataset(dataset.observations, dataset.actions, dataset.rewards, dataset.terminals, timeouts,
                          dataset.next_observations, dataset.infos, dataset.metadata)


def make_d4rl_maze_dataset(name: str, transitions: int, seed: int = 0, noise: float = 0.0,
                           progress: bool = False) -> OfflineDataset:
    """``transitions`` steps of D4RL's maze2d generation procedure in maze ``name`` (see the module's description).

    Args:
        name: A key of ``D4RL_MAZES``.
        transitions: The steps, ≥ 1 (D4RL's files hold 1M).
        seed: The seed of the env and the controller.
        noise: The std of Gaussian action noise (D4RL's datasets: 0; its ``--noisy``: 0.5).
        progress: Show a progress bar.

    Raises:
        ValueError: If ``name``, ``transitions`` or ``noise`` is out of range.
    """
    from tqdm.auto import tqdm

    if not (isinstance(transitions, int) and transitions >= 1):
        raise ValueError(f"transitions must be an int >= 1, got {transitions!r}")
    if not (np.isfinite(noise) and noise >= 0):
        raise ValueError(f"noise must be a finite number >= 0, got {noise!r}")
    env = maze_env(name)
    env.reset(seed=seed)
    maze, rng, switch_steps = env.unwrapped.maze, np.random.default_rng(seed), D4RL_MAZES[name][1]
    grid = np.asarray(maze.maze_map)
    cells = free_cells(grid)
    controller = D4RLWaypointController(grid, rng)

    def draw(spread: float) -> np.ndarray:
        return np.array(cells[rng.integers(len(cells))], dtype=float) + rng.uniform(-spread, spread, size=2)

    target = draw(0.1)
    set_goal(env, from_d4rl(maze, target))
    observation = place_ball(env, from_d4rl(maze, draw(0.1)), rng.normal(0.0, 0.1, size=2))
    columns = {key: [] for key in ("observations", "actions", "timeouts", "next_observations", "goal")}
    since_switch = 0
    for _ in tqdm(range(transitions), desc=name, disable=not progress, mininterval=1.0):
        state = observation["observation"]
        action, done = controller.act(to_d4rl(maze, state[:2]), velocity_to_d4rl(state[2:]), target)
        action = np.clip(action + rng.normal(0.0, noise, size=2), -1.0, 1.0) if noise else action
        done = done or since_switch >= switch_steps
        observation, *_ = env.step(action_from_d4rl(action).astype(np.float32))
        for key, value in (("observations", state), ("actions", action_from_d4rl(action)), ("timeouts", done),
                           ("next_observations", observation["observation"]), ("goal", env.unwrapped.goal.copy())):
            columns[key].append(value)
        since_switch += 1
        if done:
            target, since_switch = draw(0.1), 0
            set_goal(env, from_d4rl(maze, target))
    env.close()
    arrays = {key: np.asarray(value) for key, value in columns.items()}
    goal = evaluation_goal(name, maze)
    rewards = (np.linalg.norm(arrays["observations"][:, :2] - goal, axis=1) <= 0.5).astype(np.float32)
    arrays["timeouts"][-1] = True  # the last segment ends where the data does
    return OfflineDataset(
        observations=arrays["observations"].astype(np.float32), actions=arrays["actions"].astype(np.float32),
        rewards=rewards, terminals=np.zeros(transitions, dtype=bool), timeouts=arrays["timeouts"],
        next_observations=arrays["next_observations"].astype(np.float32), infos={"goal": arrays["goal"]},
        metadata={"task": name, "env_id": D4RL_MAZES[name][0], "procedure": "d4rl",
                  "controller": f"D4RL waypoint controller (Q-iteration, jitter -U(0, {WAYPOINT_JITTER}), solve "
                                f"{SOLVE_THRESHOLD}), k_p={P_GAIN}, k_d={D_GAIN}, action noise {noise}",
                  "evaluation_goal": goal.tolist(), "transitions": transitions, "switch_steps": switch_steps,
                  "seed": seed, "gymnasium_robotics": metadata.version("gymnasium-robotics")},
    )
