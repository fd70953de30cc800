"""Train a stable-baselines3 agent on an adaptstep env, with hyperparameters from ``agents/<algo>.yml``.

The YAML follows rl-baselines3-zoo: one entry per env id with ``n_timesteps``, ``policy``, ``n_envs``,
optional ``env_kwargs``, ``policy_kwargs``, ``vec_env`` (``dummy`` or ``subproc``), ``checkpoint_freq``,
``torch_threads`` (default 1: small MLPs train fastest single-threaded on the CPU) and ``normalize`` (true, or
VecNormalize's keyword arguments such as ``{norm_obs: true, norm_reward: false}``: SB3's running mean/std
normalisation of observations (and returns), saved beside the model as ``vecnormalize.pkl`` and applied by
``ModelController``); every other key goes to the algorithm's constructor.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import stable_baselines3
import torch
import yaml
from gymnasium.wrappers import RescaleAction
from stable_baselines3.common.callbacks import CheckpointCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecNormalize

from adaptstep.agents.controllers import ALGORITHMS, RUN_FILE, VECNORMALIZE_FILE
from adaptstep.io import atomic_path, atomic_write_text
from adaptstep.specs import load_yaml, project_file

RESERVED = ("n_timesteps", "policy", "n_envs", "env_kwargs", "vec_env", "checkpoint_freq", "torch_threads",
            "normalize")


def hyperparameters(algo: str, env_id: str, config: str | Path | None = None) -> dict[str, Any]:
    """The entry for ``env_id`` in ``config`` (default ``agents/<algo>.yml``)."""
    if algo not in ALGORITHMS:
        raise ValueError(f"algo must be one of {list(ALGORITHMS)}, got {algo!r}")
    path = Path(config) if config else project_file(f"agents/{algo}.yml")
    table = load_yaml(path) or {}
    if env_id not in table:
        raise ValueError(f"{path} has no entry for env {env_id!r}; it has {sorted(table)}")
    return dict(table[env_id])


def normalized_actions(env: gym.Env) -> gym.Env:
    """Rescale a Box action space to [-1, 1] (SB3's advice for PPO/SAC); other spaces pass through."""
    space = env.action_space
    if isinstance(space, gym.spaces.Box) and not (np.all(space.low == -1) and np.all(space.high == 1)):
        unit = np.ones(space.shape, dtype=space.dtype)
        return RescaleAction(env, -unit, unit)
    return env


def _normalize_kwargs(value: Any) -> dict[str, Any] | None:
    """VecNormalize's keyword arguments for the ``normalize`` entry: None for false, {} for true."""
    if isinstance(value, bool):
        return {} if value else None
    if isinstance(value, Mapping):
        return dict(value)
    raise ValueError(f"normalize must be true, false or a mapping of VecNormalize arguments, got {value!r}")


def train(
    env_id: str,
    algo: str,
    out: str | Path,
    config: str | Path | None = None,
    timesteps: int | None = None,
    seed: int = 0,
    env_kwargs: Mapping[str, Any] | None = None,
    progress_bar: bool = True,
    overwrite: bool = False,
) -> Path:
    """Train and save ``out/model.zip`` with ``out/run.yaml``, checkpoints and TensorBoard logs; returns the model path."""
    out = Path(out)
    model_path = out / "model.zip"
    if model_path.exists() and not overwrite:
        raise FileExistsError(f"{model_path} exists; choose another --out or pass --overwrite")
    params = hyperparameters(algo, env_id, config)
    total = int(timesteps if timesteps is not None else params["n_timesteps"])
    if total < 1:
        raise ValueError(f"timesteps must be >= 1, got {total}")
    kwargs = {**params.get("env_kwargs", {}), **dict(env_kwargs or {})}
    n_envs = int(params.get("n_envs", 1))
    vec_env_classes = {"dummy": DummyVecEnv, "subproc": SubprocVecEnv}
    if params.get("vec_env", "dummy") not in vec_env_classes:
        raise ValueError(f"vec_env must be one of {sorted(vec_env_classes)}, got {params['vec_env']!r}")
    vec_env_cls = vec_env_classes[params.get("vec_env", "dummy")]
    vec_env = make_vec_env(env_id, n_envs=n_envs, seed=seed, env_kwargs={"render_mode": None, **kwargs},
                           wrapper_class=normalized_actions, vec_env_cls=vec_env_cls)
    normalize = _normalize_kwargs(params.get("normalize", False))
    if normalize is not None:
        vec_env = VecNormalize(vec_env, gamma=float(params.get("gamma", 0.99)), **normalize)
    torch.set_num_threads(int(params.get("torch_threads", 1)))
    algo_kwargs = {key: value for key, value in params.items() if key not in RESERVED}
    algorithm = getattr(stable_baselines3, algo.upper())
    model = algorithm(params.get("policy", "MlpPolicy"), vec_env, seed=seed,
                      tensorboard_log=str(out / "tb"), verbose=0, **algo_kwargs)
    callbacks = []
    if params.get("checkpoint_freq"):
        callbacks.append(CheckpointCallback(max(int(params["checkpoint_freq"]) // n_envs, 1),
                                            str(out / "checkpoints"), name_prefix="model",
                                            save_vecnormalize=normalize is not None))
    started = time.perf_counter()
    model.learn(total_timesteps=total, callback=callbacks, progress_bar=progress_bar, tb_log_name=algo)
    seconds = time.perf_counter() - started
    vec_env.close()

    with atomic_path(model_path) as temporary:
        model.save(temporary)
    if normalize is not None:
        with atomic_path(out / VECNORMALIZE_FILE) as temporary:
            vec_env.save(temporary)
    run = {"algo": algo, "env_id": env_id, "env_kwargs": kwargs, "timesteps": total, "seed": seed,
           "hyperparameters": params, "train_seconds": round(seconds, 1)}
    atomic_write_text(out / RUN_FILE, yaml.safe_dump(run, sort_keys=False))
    return model_path
