"""maze2d datasets the way D4RL made them.

A point mass in a Gymnasium-Robotics PointMaze is driven to random goals by a waypoint PD controller (Fu et al.
2020, ``scripts/generation/generate_maze2d_datasets.py``).

The maze is the env's grid; the controller finds the shortest cell path to the goal by breadth-first search and
steers toward the centre of the next cell (the goal itself in the goal's cell) with
a = clip(k_p·(waypoint − position) − k_d·velocity, −1, 1), k_p = 10, k_d = 1. The env resamples the goal
whenever it is reached (``continuing_task``), so an episode is one long stream of goal-reaching segments, cut by
a timeout every ``episode_steps`` (D4RL's maze2d limits: 300 / 600 / 800 steps). Observations are D4RL's 4-d
(x, y, vx, vy); ``infos/goal`` holds the goal, and the reward is the env's sparse one (1 within 0.45 of it).
"""

from __future__ import annotations

from collections import deque
from importlib import metadata

import numpy as np

from adaptstep.planning.datasets import OfflineDataset

MAZES = {"maze2d-umaze": ("PointMaze_UMaze-v3", 300), "maze2d-medium": ("PointMaze_Medium-v3", 600),
         "maze2d-large": ("PointMaze_Large-v3", 800)}
P_GAIN, D_GAIN = 10.0, 1.0


class WaypointController:
    """Shortest-path waypoints over the maze's free cells and a PD law toward the next one.

    Args:
        maze (gymnasium_robotics.envs.maze.maze_v4.Maze): The env's maze (``env.unwrapped.maze``).
    """

    def __init__(self, maze) -> None:
        self.maze, self.grid = maze, np.asarray(maze.maze_map)
        self._paths: dict[tuple, list[tuple[int, int]]] = {}

    def _path(self, start: tuple[int, int], goal: tuple[int, int]) -> list[tuple[int, int]]:
        """Cells from ``start`` to ``goal`` (breadth-first search over 4-neighbours, cached)."""
        if (start, goal) not in self._paths:
            parents, queue = {start: start}, deque([start])
            while queue:
                cell = queue.popleft()
                if cell == goal:
                    break
                for step in ((1, 0), (-1, 0), (0, 1), (0, -1)):
                    nxt = (cell[0] + step[0], cell[1] + step[1])
                    if self.grid[nxt] == 0 and nxt not in parents:
                        parents[nxt] = cell
                        queue.append(nxt)
            path, cell = [goal], goal
            while cell != start:
                cell = parents[cell]
                path.append(cell)
            self._paths[(start, goal)] = path[::-1]
        return self._paths[(start, goal)]

    def act(self, position: np.ndarray, velocity: np.ndarray, goal: np.ndarray) -> np.ndarray:
        """The PD action toward the next waypoint on the way to ``goal``."""
        start = tuple(int(i) for i in self.maze.cell_xy_to_rowcol(position))
        target_cell = tuple(int(i) for i in self.maze.cell_xy_to_rowcol(goal))
        path = self._path(start, target_cell)
        waypoint = goal if len(path) == 1 else self.maze.cell_rowcol_to_xy(np.array(path[1]))
        return np.clip(P_GAIN * (waypoint - position) - D_GAIN * velocity, -1.0, 1.0).astype(np.float32)


def make_maze_dataset(name: str, transitions: int, seed: int = 0, episode_steps: int | None = None,
                      progress: bool = False) -> OfflineDataset:
    """``transitions`` steps of the waypoint controller in maze ``name`` (one of ``MAZES``) from ``seed``."""
    import gymnasium as gym
    import gymnasium_robotics
    from tqdm.auto import tqdm

    if name not in MAZES:
        raise ValueError(f"name must be one of {sorted(MAZES)}, got {name!r}")
    if not (isinstance(transitions, int) and transitions >= 1):
        raise ValueError(f"transitions must be an int >= 1, got {transitions!r}")
    env_id, default_steps = MAZES[name]
    episode_steps = episode_steps or default_steps
    gym.register_envs(gymnasium_robotics)
    env = gym.make(env_id, continuing_task=True, reset_target=True, max_episode_steps=episode_steps)
    controller = WaypointController(env.unwrapped.maze)
    columns = {key: [] for key in ("observations", "actions", "rewards", "timeouts", "next_observations", "goal")}
    observation, _ = env.reset(seed=seed)
    for _ in tqdm(range(transitions), desc=name, disable=not progress, mininterval=1.0):
        state, goal = observation["observation"], observation["desired_goal"]
        action = controller.act(state[:2], state[2:], goal)
        observation, reward, terminated, truncated, _ = env.step(action)
        for key, value in (("observations", state), ("actions", action), ("rewards", reward), ("goal", goal),
                           ("timeouts", truncated), ("next_observations", observation["observation"])):
            columns[key].append(value)
        if terminated or truncated:
            observation, _ = env.reset()
    env.close()
    arrays = {key: np.asarray(value) for key, value in columns.items()}
    arrays["timeouts"][-1] = True  # the last episode ends where the data does
    return OfflineDataset(
        observations=arrays["observations"], actions=arrays["actions"], rewards=arrays["rewards"],
        terminals=np.zeros(transitions, dtype=bool), timeouts=arrays["timeouts"],
        next_observations=arrays["next_observations"], infos={"goal": arrays["goal"]},
        metadata={"task": name, "env_id": env_id, "controller": f"waypoint PD, k_p={P_GAIN}, k_d={D_GAIN}",
                  "transitions": transitions, "episode_steps": episode_steps, "seed": seed,
                  "gymnasium_robotics": metadata.version("gymnasium-robotics")},
    )
