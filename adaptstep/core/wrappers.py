"""The wrapper that ``gym.make`` applies to every adaptstep env."""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym
from gymnasium.utils import RecordConstructorArgs


class WallTime(gym.Wrapper, RecordConstructorArgs):
    """Add the wall time spent in ``step`` and, at the episode's end, the env's ``timings()`` to ``info``.

    ``info["wall_time"]`` holds the seconds spent inside ``step`` since the last ``reset``; the final ``info`` also
    holds ``timings()`` (e.g. a planner's ``plan_seconds``).

    Kept out of the envs themselves so that their info stays deterministic (``check_env`` compares the infos of
    two identical episodes), as gymnasium's ``RecordEpisodeStatistics`` does for its timer.
    """

    def __init__(self, env: gym.Env):
        RecordConstructorArgs.__init__(self)
        gym.Wrapper.__init__(self, env)
        self.wall_time = 0.0

    def reset(self, **kwargs: Any):
        """Reset the env and the wall time."""
        observation, info = self.env.reset(**kwargs)
        self.wall_time = 0.0
        return observation, {**info, "wall_time": 0.0}

    def step(self, action: Any):
        """Step the env, timing the step."""
        started = time.perf_counter()
        observation, reward, terminated, truncated, info = self.env.step(action)
        self.wall_time += time.perf_counter() - started
        info = {**info, "wall_time": self.wall_time}
        if terminated or truncated:
            info.update(getattr(self.env.unwrapped, "timings", dict)())
        return observation, reward, terminated, truncated, info
