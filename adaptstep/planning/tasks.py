"""The real tasks that planners act in, evaluated the way D4RL scores them.

maze2d: Gymnasium-Robotics PointMaze with a fixed goal per episode (``continuing_task=True`` and no goal
resampling: the point may stay at the goal and collect the sparse reward of 1 per step within 0.45 of it, as in
D4RL's maze2d evaluation), 300 / 600 / 800 steps; the planner's condition is the goal position. ``maze2d-umaze``
and the like are adaptstep's own protocol: the env draws the goal and start cells at random per seed (±0.25 noise)
and rewards the point within 0.45 of the goal. ``maze2d-umaze-v1`` and the like are D4RL's protocol
(``d4rl_eval``): the goal fixed at the maze's G cell, the start anywhere, reward within 0.5.
hopper: Gymnasium MuJoCo Hopper-v5, 1000 steps, terminated when the hopper falls; the condition is the target
return-to-go (for return-conditioned planners).
The score of an episode is its summed task reward; ``adaptstep.planning.scores`` normalizes it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from adaptstep.planning.d4rl_eval import controller_scores, make_d4rl_eval_env
from adaptstep.planning.d4rl_maze import D4RL_MAZES
from adaptstep.planning.maze_data import MAZES, WaypointController


@dataclass(frozen=True)
class TaskSpec:
    """A planning task's env and dimensions.

    Args:
        env_id: The Gymnasium env id.
        max_steps: The episode's step limit.
        condition: ``"goal"`` or ``"return"``: what planners condition on.
        obs_dim: The state's dimension.
        act_dim: The action's dimension.
        protocol: ``"d4rl"`` for D4RL's maze2d evaluation protocol, ``"adaptstep"`` otherwise.
    """

    env_id: str
    max_steps: int
    condition: str  # "goal" or "return"
    obs_dim: int
    act_dim: int
    protocol: str = "adaptstep"


PLANNING_TASKS: dict[str, TaskSpec] = {
    **{name: TaskSpec(env_id, steps, "goal", 4, 2) for name, (env_id, steps) in MAZES.items()},
    **{name: TaskSpec(env_id, steps, "goal", 4, 2, "d4rl") for name, (env_id, steps, _) in D4RL_MAZES.items()},
    "hopper-medium": TaskSpec("Hopper-v5", 1000, "return", 11, 3),
}


def planning_task(task: str) -> TaskSpec:
    """The spec of ``task``.

    Raises:
        ValueError: If ``task`` is not a key of ``PLANNING_TASKS``.
    """
    if task not in PLANNING_TASKS:
        raise ValueError(f"task must be one of {sorted(PLANNING_TASKS)}, got {task!r}")
    return PLANNING_TASKS[task]


def make_task_env(task: str) -> Any:
    """The Gymnasium env of ``task`` with its evaluation time limit."""
    import gymnasium as gym

    spec = planning_task(task)
    if spec.protocol == "d4rl":
        return make_d4rl_eval_env(task)
    if spec.condition == "goal":
        import gymnasium_robotics

        gym.register_envs(gymnasium_robotics)
        return gym.make(spec.env_id, continuing_task=True, reset_target=False, max_episode_steps=spec.max_steps)
    return gym.make(spec.env_id, max_episode_steps=spec.max_steps)


def split_observation(task: str, observation: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """(state, goal) from a raw observation: maze2d's dict gives (x, y, vx, vy) and the goal; hopper has none."""
    if planning_task(task).condition == "goal":
        return np.asarray(observation["observation"], np.float64), np.asarray(observation["desired_goal"], np.float64)
    return np.asarray(observation, np.float64), None


def waypoint_scores(task: str, seeds: Sequence[int]) -> list[float]:
    """The score of maze2d's data-collection controller in ``task`` on each of ``seeds``: a reference for planners.

    The controller is ``WaypointController`` (waypoints + PD, no planning), or D4RL's ``D4RLWaypointController``
    under D4RL's protocol; the score is the summed task reward.
    """
    if planning_task(task).protocol == "d4rl":
        return controller_scores(task, seeds)
    env = make_task_env(task)
    controller = WaypointController(env.unwrapped.maze)  # the maze grid lives on the Gymnasium-Robotics env
    scores = []
    try:
        for seed in seeds:
            (observation, _), score, done = env.reset(seed=seed), 0.0, False
            while not done:
                state, goal = split_observation(task, observation)
                observation, reward, terminated, truncated, _ = env.step(controller.act(state[:2], state[2:], goal))
                score, done = score + reward, terminated or truncated
            scores.append(score)
    finally:
        env.close()
    return scores
