"""An SB3 ``VecEnv`` over a native Gymnasium vector env, so that SB3 steps N episodes with one call of it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.wrappers.utils import rescale_box
from stable_baselines3.common.vec_env.base_vec_env import VecEnv, VecEnvIndices, VecEnvStepReturn


class GymnasiumVecEnv(VecEnv):
    """SB3's ``VecEnv`` API over a Gymnasium ``VectorEnv`` in ``SameStep`` autoreset mode.

    An ending episode's last observation goes to ``infos[i]["terminal_observation"]`` and
    ``infos[i]["TimeLimit.truncated"]`` says whether it was truncated, as SB3's ``DummyVecEnv`` reports them, beside
    the episode's final info (its cost and metrics); the other per-env infos stay empty (SB3's ``VecMonitor`` adds
    the episode statistics). With ``unit_actions`` a Box action space is exposed as [-1, 1] and rescaled as
    Gymnasium's ``RescaleAction`` does (``normalized_actions``).

    Args:
        env: The vector env, built with ``autoreset_mode="SameStep"``.
        unit_actions: Expose a Box action space as [-1, 1].

    Raises:
        ValueError: If ``env`` does not autoreset in the same step.
    """

    def __init__(self, env: VectorEnv, unit_actions: bool = True) -> None:
        if env.metadata.get("autoreset_mode") != AutoresetMode.SAME_STEP:
            raise ValueError(f"env must autoreset in the same step (autoreset_mode='SameStep'), got "
                             f"{env.metadata.get('autoreset_mode')!r}")
        self.env = env
        space = env.single_action_space
        self._rescale = None
        if unit_actions and isinstance(space, gym.spaces.Box) and not (np.all(space.low == -1)
                                                                      and np.all(space.high == 1)):
            space, _, self._rescale = rescale_box(space, np.float32(-1), np.float32(1))
        super().__init__(env.num_envs, env.single_observation_space, space)
        self._actions: np.ndarray | None = None

    def reset(self) -> np.ndarray:
        """Reset every episode with the seeds and options set by ``seed``/``set_options`` (then forgotten)."""
        seeds = None if all(seed is None for seed in self._seeds) else list(self._seeds)
        options = self._options[0] if self._options and self._options[0] else None
        observations, _ = self.env.reset(seed=seeds, options=options)
        self.reset_infos = [{} for _ in range(self.num_envs)]
        self._reset_seeds()
        self._reset_options()
        return observations

    def step_async(self, actions: np.ndarray) -> None:
        """Keep the actions for ``step_wait``."""
        self._actions = actions

    def step_wait(self) -> VecEnvStepReturn:
        """Step every episode: observations, rewards, dones and one info dict per env."""
        actions = self._actions if self._rescale is None else self._rescale(self._actions)
        observations, rewards, terminated, truncated, info = self.env.step(actions)
        dones = terminated | truncated
        infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        final = info.get("final_info", {})
        for i in np.flatnonzero(dones):
            infos[i] = {key: value[i] for key, value in final.items()
                        if not key.startswith("_") and final.get(f"_{key}", dones)[i]}
            infos[i].update(terminal_observation=info["final_obs"][i],
                            **{"TimeLimit.truncated": bool(truncated[i] and not terminated[i])})
        return observations, rewards.astype(np.float32), dones, infos

    def close(self) -> None:
        """Close the vector env."""
        self.env.close()

    def get_attr(self, attr_name: str, indices: VecEnvIndices = None) -> list[Any]:
        """The vector env's attribute, once per selected env."""
        return [getattr(self.env, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: VecEnvIndices = None) -> None:
        """Set an attribute of the vector env (shared by its episodes)."""
        setattr(self.env, attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: VecEnvIndices = None, **kwargs: Any) -> list[Any]:
        """Call a method of the vector env once."""
        return [getattr(self.env, method_name)(*args, **kwargs)]

    def env_is_wrapped(self, wrapper_class: type[gym.Wrapper], indices: VecEnvIndices = None) -> list[bool]:
        """False for every env: the episodes of a vector env have no per-env wrappers."""
        return [False] * len(self._get_indices(indices))

    def _get_indices(self, indices: VecEnvIndices) -> Sequence[int]:
        if indices is None:
            return range(self.num_envs)
        return [indices] if isinstance(indices, int) else list(indices)
