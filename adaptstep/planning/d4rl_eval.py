"""D4RL's maze2d evaluation protocol on PointMaze, and the reference controllers measured under it.

``D4RLMazeProtocol`` wraps a PointMaze env (``d4rl_maze.maze_env``): every reset puts the goal at the maze's G cell
point (no noise) and the ball in any empty or goal cell + U(−0.1, 0.1) with velocity N(0, 0.1²); each step's
reward is 1 within 0.5 of the goal (D4RL's ``MazeEnv`` with ``reward_type='sparse'``, ``reset_target=False``).
With the time limit of ``D4RL_MAZES`` the summed reward is the score that maze2d-*-v1's references normalize.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from adaptstep.planning.d4rl_maze import (
    D4RL_MAZES,
    D4RLWaypointController,
    action_from_d4rl,
    evaluation_goal,
    free_cells,
    from_d4rl,
    maze_env,
    place_ball,
    set_goal,
    to_d4rl,
    velocity_to_d4rl,
)

GOAL_RADIUS = 0.5


def make_d4rl_eval_env(name: str) -> Any:
    """The evaluation env of D4RL maze ``name`` (a key of ``D4RL_MAZES``) with D4RL's episode length."""
    return D4RLMazeProtocol(maze_env(name, max_episode_steps=D4RL_MAZES[name][1]), name)


class D4RLMazeProtocol:
    """A PointMaze env under D4RL's evaluation protocol (see the module's description).

    Args:
        env (gymnasium.Env): A PointMaze env made by ``maze_env(name, ...)``.
        name: Its D4RL maze, a key of ``D4RL_MAZES``.
    """

    def __init__(self, env: Any, name: str) -> None:
        self.env, self.name = env, name
        self.maze = env.unwrapped.maze
        self.goal = evaluation_goal(name, self.maze)
        self.cells = free_cells(np.asarray(self.maze.maze_map))
        self.observation_space, self.action_space = env.observation_space, env.action_space

    @property
    def unwrapped(self) -> Any:
        """The PointMaze env (its ``maze`` is the grid)."""
        return self.env.unwrapped

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """Goal at the G cell point, ball in a random free cell (seeded by ``seed``)."""
        self.env.reset(seed=seed)
        rng = np.random.default_rng(seed)
        start = np.array(self.cells[rng.integers(len(self.cells))], dtype=float) + rng.uniform(-0.1, 0.1, size=2)
        set_goal(self.env, self.goal)
        observation = place_ball(self.env, from_d4rl(self.maze, start), rng.normal(0.0, 0.1, size=2))
        return observation, {"success": self.reached(observation)}

    def reached(self, observation: dict) -> bool:
        """Whether the ball is within ``GOAL_RADIUS`` of the goal."""
        return bool(np.linalg.norm(observation["achieved_goal"] - self.goal) <= GOAL_RADIUS)

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        """PointMaze's step with D4RL's sparse reward (1 within 0.5 of the goal); never terminates."""
        observation, _, _, truncated, info = self.env.step(action)
        success = self.reached(observation)
        return observation, float(success), False, truncated, {**info, "success": success}

    def close(self) -> None:
        """Close the wrapped env."""
        self.env.close()


def controller_scores(name: str, seeds: Sequence[int]) -> list[float]:
    """The scores of D4RL's data-collection controller (``D4RLWaypointController``) under the protocol."""
    env, scores = make_d4rl_eval_env(name), []
    try:
        for seed in seeds:
            (observation, _), score, done = env.reset(seed=seed), 0.0, False
            controller = D4RLWaypointController(np.asarray(env.maze.maze_map), np.random.default_rng(seed))
            target = to_d4rl(env.maze, env.goal)
            while not done:
                state = observation["observation"]
                action, _ = controller.act(to_d4rl(env.maze, state[:2]), velocity_to_d4rl(state[2:]), target)
                observation, reward, terminated, truncated, _ = env.step(action_from_d4rl(action).astype(np.float32))
                score, done = score + reward, terminated or truncated
            scores.append(score)
    finally:
        env.close()
    return scores


def random_scores(name: str, seeds: Sequence[int]) -> list[float]:
    """The scores of uniformly random actions under the protocol (seeded per episode)."""
    env, scores = make_d4rl_eval_env(name), []
    try:
        for seed in seeds:
            (_, _), score, done = env.reset(seed=seed), 0.0, False
            rng = np.random.default_rng(seed + 1)
            while not done:
                _, reward, terminated, truncated, _ = env.step(rng.uniform(-1, 1, size=2).astype(np.float32))
                score, done = score + reward, terminated or truncated
            scores.append(score)
    finally:
        env.close()
    return scores
