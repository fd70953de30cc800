"""PushT (Chi et al. 2023, Diffusion Policy's benchmark) as a robot task, through gym-pusht.

gym-pusht's ``gym_pusht/PushT-v0``: a disc agent (radius 15) pushes a T-shaped block onto a fixed goal pose in a
512 × 512 table; the action is the agent's absolute target position in [0, 512]² (a PD controller follows it for
0.1 s a step); an episode lasts 300 steps and ends early once the goal coverage (the share of the goal T's area the
block covers) exceeds 0.95.

The wrapper gives the robot family's observation ``{"image": uint8 (S, S, 3), "proprio": float32 (P,)}``: the image
is gym-pusht's own ``pixels`` observation, proprio its ``agent_pos`` (2) followed, on task ``pusht`` (P = 18), by the
T's 8 keypoints (``environment_state``, 16), so a state-based policy reads proprio alone (Diffusion Policy's
low-dimensional PushT observation holds the same two parts). On ``pusht-image`` (P = 2) proprio is ``agent_pos``
alone, as in Diffusion Policy's image-based PushT: the T is seen only in the image. ``info`` adds ``coverage``,
``distance`` = 1 − coverage and ``success`` = coverage > 0.95, gym-pusht's ``is_success``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import gymnasium as gym
import gym_pusht  # noqa: F401  (registers gym_pusht/PushT-v0)
import numpy as np
from gym_pusht.envs.pusht import PushTEnv
from gymnasium import spaces
from gymnasium.utils import RecordConstructorArgs

if TYPE_CHECKING:
    from adaptstep.policies.task import RobotTaskSpec

SUCCESS_COVERAGE = 0.95  # gym-pusht's success_threshold
AGENT_DIM, KEYPOINT_DIM = 2, 16


class PushTTask(gym.Wrapper, RecordConstructorArgs):
    """gym-pusht's PushT with the robot family's observation and ``info`` (see the module's description).

    Args:
        env (gymnasium.Env): ``gym_pusht/PushT-v0`` made with ``obs_type="pixels_agent_pos"``.
        spec: The task.
        seed: Seeds the first reset.
    """

    def __init__(self, env: gym.Env, spec: RobotTaskSpec, seed: int | None = None):
        RecordConstructorArgs.__init__(self, spec=spec, seed=seed)
        gym.Wrapper.__init__(self, env)
        self.task, self._seed = spec, seed
        size = env.unwrapped.observation_height
        self.observation_space = spaces.Dict({
            "image": spaces.Box(0, 255, (size, size, 3), np.uint8),
            "proprio": spaces.Box(0.0, 512.0, (spec.proprio_dim,), np.float32),
        })
        if seed is not None:
            self.action_space.seed(seed)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """gym-pusht's reset (its ``reset_to_state`` option included), seeded by ``seed`` or the first-reset seed."""
        if seed is None:
            seed, self._seed = self._seed, None
        observation, info = self.env.reset(seed=seed, options=options)
        return self._observe(observation), self._score(info, self.env.unwrapped._get_coverage())

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        """gym-pusht's step: the agent's target ``action`` (x, y) in [0, 512]²."""
        observation, reward, terminated, truncated, info = self.env.step(np.asarray(action, dtype=np.float64))
        return self._observe(observation), reward, terminated, truncated, self._score(info, info["coverage"])

    def _observe(self, observation: dict) -> dict[str, np.ndarray]:
        proprio = observation["agent_pos"]
        if self.task.proprio_dim == AGENT_DIM + KEYPOINT_DIM:
            keypoints = PushTEnv.get_keypoints(self.env.unwrapped._block_shapes).flatten()
            proprio = np.concatenate([proprio, keypoints])
        proprio = proprio.astype(np.float32)
        return {"image": np.ascontiguousarray(observation["pixels"]), "proprio": proprio}

    @staticmethod
    def _score(info: dict, coverage: float) -> dict:
        info["coverage"] = float(coverage)
        info["distance"] = 1.0 - float(coverage)
        info["success"] = bool(coverage > SUCCESS_COVERAGE)
        return info


def make_pusht_env(spec: RobotTaskSpec, image_size: int, seed: int | None = None) -> PushTTask:
    """PushT with ``image_size`` × ``image_size`` images (gym-pusht's ``observation_width``/``height``)."""
    env = gym.make(spec.env_id, obs_type="pixels_agent_pos", render_mode="rgb_array",
                   observation_width=int(image_size), observation_height=int(image_size),
                   max_episode_steps=spec.episode_steps)
    return PushTTask(env, spec, seed)
