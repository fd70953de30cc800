"""MetaWorld (Yu et al. 2019; Farama's ``metaworld`` 3.1.1) manipulation tasks as robot tasks, with MetaWorld's own
scripted policies as experts.

A Sawyer arm acts by an end-effector displacement (3 numbers, scaled by 1/100 m) and a gripper effort (1), all in
[-1, 1]. MetaWorld's 39-number state holds the hand position (3), the gripper opening (1), two objects' positions
and quaternions (14), the same 18 of the previous step, and the goal position (3). Each reset draws the object and
goal positions from the task's random reset space with the env seeded by the episode's seed, as MetaWorld makes its
own tasks (``_freeze_rand_vec`` off, ``seeded_rand_vec`` on, no ``set_task``), and the goal is observed (MetaWorld's
MT setting, ``_partially_observable`` off). An episode ends at the first step MetaWorld marks ``info["success"]``
(what its ``AutoTerminateOnSuccessWrapper`` does in evaluation), else after the task's ``episode_steps``.

The wrapper gives the robot family's observation ``{"image": uint8 (S, S, 3), "proprio": float32 (P,)}``: the image
from MetaWorld's ``corner2`` camera, turned upright (MuJoCo's offscreen buffer comes bottom row first), rendered
without shadows or multisampling (on this project's CPU machines about 13 ms a frame at 84 × 84, against 105 ms
with MetaWorld's 4096-pixel shadow maps); proprio is the whole 39-number state (P = 39, the state-based variant).
``info`` adds ``distance`` (the first object's distance to the goal, in metres) and ``success``.
"""

from __future__ import annotations

import importlib
from types import ModuleType
from typing import TYPE_CHECKING

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.utils import RecordConstructorArgs

if TYPE_CHECKING:
    from adaptstep.policies.task import RobotTaskSpec

CAMERA = "corner2"
MISSING = ("the MetaWorld tasks need metaworld 3.1.1, which pins mujoco 3.3.0: run them in `make .venv-metaworld` "
           "(pip install 'adaptstep[metaworld]' in an environment of their own)")
STATE_DIM, ACTION_DIM = 39, 4


class MetaWorldTask(gym.Env, RecordConstructorArgs):
    """One MetaWorld v3 task with the robot family's observation and ``info`` (see the module's description).

    Args:
        spec: The task; ``spec.env_id`` is MetaWorld's name, e.g. ``push-v3``.
        image_size: S, the camera image's side in pixels.
        seed: Seeds the first reset.
    """

    metadata = {"render_modes": ["rgb_array"]}

    def __init__(self, spec: RobotTaskSpec, image_size: int, seed: int | None = None):
        RecordConstructorArgs.__init__(self, spec=spec, image_size=image_size, seed=seed)
        ALL_V3_ENVIRONMENTS = _metaworld("env_dict").ALL_V3_ENVIRONMENTS

        self.task, self._seed, self.render_mode = spec, seed, "rgb_array"
        self.scene = ALL_V3_ENVIRONMENTS[spec.env_id](render_mode="rgb_array", camera_name=CAMERA,
                                                      width=int(image_size), height=int(image_size))
        self.scene._freeze_rand_vec, self.scene.seeded_rand_vec = False, True
        self.scene._partially_observable, self.scene._set_task_called = False, True
        del self.scene.sawyer_observation_space  # a cached property that depends on the observability
        self.scene.model.light_castshadow[:] = 0
        self.scene.model.vis.quality.offsamples = 0
        self.state = np.zeros(STATE_DIM)  # MetaWorld's latest 39-number observation, which its scripted policy reads
        self._steps = 0
        self.action_space = spaces.Box(-1.0, 1.0, (ACTION_DIM,), np.float32)
        self.observation_space = spaces.Dict({
            "image": spaces.Box(0, 255, (int(image_size), int(image_size), 3), np.uint8),
            "proprio": spaces.Box(-np.inf, np.inf, (spec.proprio_dim,), np.float32),
        })
        if seed is not None:
            self.action_space.seed(seed)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[dict, dict]:
        """A new episode: object and goal positions drawn by MetaWorld with its env seeded by ``seed`` (or the
        first-reset seed)."""
        if seed is None:
            seed, self._seed = self._seed, None
        super().reset(seed=seed)
        self.scene.seed(int(self.np_random.integers(2**31)) if seed is None else int(seed))
        self.state, _ = self.scene.reset()
        self._steps = 0
        return self._observe(), {"distance": self._distance(), "success": False}

    def step(self, action: np.ndarray) -> tuple[dict, float, bool, bool, dict]:
        """MetaWorld's step; terminated at its first success, truncated after ``episode_steps`` steps."""
        self.state, reward, _, _, info = self.scene.step(np.clip(np.asarray(action, dtype=np.float64), -1.0, 1.0))
        self._steps += 1
        info = {**info, "success": bool(info["success"]), "distance": self._distance()}
        return (self._observe(), float(reward), info["success"], self._steps >= self.task.episode_steps and
                not info["success"], info)

    def render(self) -> np.ndarray:
        """The ``corner2`` camera image, upright."""
        return np.ascontiguousarray(self.scene.render()[::-1])

    def close(self) -> None:
        """Free MetaWorld's renderer (and its GL context)."""
        self.scene.close()

    def _distance(self) -> float:
        """The first object's distance to the goal, in metres (MetaWorld's own ``obj_to_target`` is 0 on some
        tasks, e.g. assembly-v3)."""
        return float(np.linalg.norm(self.state[4:7] - self.state[-3:]))

    def _observe(self) -> dict[str, np.ndarray]:
        return {"image": self.render(), "proprio": self.state[:self.task.proprio_dim].astype(np.float32)}


class MetaWorldExpert:
    """MetaWorld's scripted policy for the task (``metaworld.policies``), reading the env's 39-number state.

    Args:
        task: The MetaWorld name, e.g. ``push-v3``.
    """

    def __init__(self, task: str):
        self.task = task
        self._policy = _metaworld("policies").ENV_POLICY_MAP[task]()

    def __call__(self, env: gym.Env, target: np.ndarray | None = None) -> np.ndarray:
        """The scripted action for ``env``'s current state (``target`` unused)."""
        return np.clip(self._policy.get_action(env.get_wrapper_attr("state")), -1.0, 1.0).astype(np.float32)


def _metaworld(module: str) -> ModuleType:
    """``metaworld.<module>``, imported on first use (it lives in its own environment).

    Raises:
        ImportError: If metaworld is not installed, saying where it lives.
    """
    try:
        return importlib.import_module(f"metaworld.{module}")
    except ModuleNotFoundError as error:
        if error.name != "metaworld":
            raise
        raise ImportError(MISSING) from None
