"""Train a stable-baselines3 agent on an adaptstep env, with hyperparameters from ``agents/<algo>.yml``.

The YAML follows rl-baselines3-zoo: one entry per env id with ``n_timesteps``, ``policy``, ``n_envs``,
optional ``env_kwargs``, ``policy_kwargs``, ``vec_env`` (``native``, ``dummy`` or ``subproc``; an entry that sets
``n_envs`` for an env id with a native vector env steps it by default, ``GymnasiumVecEnv``), ``checkpoint_freq``,
``torch_threads`` (default 1: small MLPs train fastest single-threaded on the CPU), ``save_replay_buffer``
(off-policy: checkpoints keep the replay buffer, so a resumed run continues with it) and ``normalize`` (true, or
VecNormalize's keyword arguments such as ``{norm_obs: true, norm_reward: false}``: SB3's running mean/std
normalisation of observations (and returns), saved beside the model as ``vecnormalize.pkl`` and applied by
``ModelController``); every other key goes to the algorithm's constructor. Every key is checked before anything is
built: unknown keys, wrong types and out-of-range values (``gamma`` outside (0, 1], ``n_envs`` < 1, ...) are errors
naming the file and the key; ``learning_rate`` and ``clip_range`` may be rl-zoo's linear schedules ``lin_<value>``.

A run owns its folder: ``train`` holds a lock on it (``adaptstep.io.folder_lock``), refuses a folder that holds
another run's files unless ``overwrite`` removes them first, writes ``run.yaml`` before training (``complete:
false``) and again at the end (``complete: true``), writes every checkpoint atomically, and on Ctrl-C saves the
model at the current step before it re-raises ``KeyboardInterrupt``. ``resume=True`` continues the run in ``out``
from its newest complete checkpoint (``adaptstep.agents.resume``) with its statistics and replay buffer, without
resetting the step counter (so learning-rate schedules go on) and adding its segment's time to ``run.yaml``'s
``train_seconds`` (the time of every segment); ``eval_freq`` adds ``HeldOutEvaluation``.
"""

from __future__ import annotations

import inspect
import re
import shutil
import signal
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import stable_baselines3
import torch
import yaml
from gymnasium.wrappers import RescaleAction
from stable_baselines3.common.callbacks import BaseCallback, CheckpointCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.vec_env import DummyVecEnv, SubprocVecEnv, VecEnv, VecMonitor, VecNormalize

from adaptstep.agents.controllers import (
    ALGORITHMS,
    BEST_MODEL_FILE,
    BEST_VECNORMALIZE_FILE,
    RUN_FILE,
    VECNORMALIZE_FILE,
    run_record,
)
from adaptstep.agents.eval_callback import HeldOutEvaluation
from adaptstep.agents.resume import REPLAY_BUFFER_FILE, newest_checkpoint
from adaptstep.agents.vector import GymnasiumVecEnv
from adaptstep.core.registry import check_env_kwargs, family_of
from adaptstep.core.settings import require_bool, require_number
from adaptstep.io import atomic_path, atomic_write_text, folder_lock
from adaptstep.specs import load_yaml, project_file

RESERVED = ("n_timesteps", "policy", "n_envs", "env_kwargs", "vec_env", "checkpoint_freq", "torch_threads",
            "normalize", "save_replay_buffer")
RUN_FILES = ("model.zip", RUN_FILE, VECNORMALIZE_FILE, REPLAY_BUFFER_FILE, BEST_MODEL_FILE, BEST_VECNORMALIZE_FILE,
             "checkpoints", "eval", "tb")  # what a run writes in its folder
SCHEDULED = ("learning_rate", "clip_range")  # keys that may be rl-zoo's "lin_<value>"
NOT_FROM_CONFIG = ("self", "policy", "env", "seed", "tensorboard_log", "verbose", "_init_setup_model")
VEC_ENV_CLASSES = {"dummy": DummyVecEnv, "subproc": SubprocVecEnv}
NATIVE = "native"  # the env id's own vector env (gym.make_vec's vector_entry_point) behind GymnasiumVecEnv


def config_file(algo: str, config: str | Path | None = None) -> Path:
    """The hyperparameter YAML: ``config``, else the project's ``agents/<algo>.yml``.

    Raises:
        ValueError: If ``algo`` is not one of ``ALGORITHMS``.
    """
    if algo not in ALGORITHMS:
        raise ValueError(f"algo must be one of {list(ALGORITHMS)}, got {algo!r}")
    return Path(config) if config else project_file(f"agents/{algo}.yml")


def hyperparameters(algo: str, env_id: str, config: str | Path | None = None) -> dict[str, Any]:
    """The entry for ``env_id`` in ``config`` (default ``agents/<algo>.yml``).

    Raises:
        ValueError: If the file does not map env ids to mappings of hyperparameters or has no entry for ``env_id``.
    """
    path = config_file(algo, config)
    table = load_yaml(path) or {}
    if not isinstance(table, dict):
        raise ValueError(f"{path} must map env ids to hyperparameters, got {type(table).__name__}")
    if env_id not in table:
        raise ValueError(f"{path} has no entry for env {env_id!r}; it has {sorted(table)}")
    if not isinstance(table[env_id], dict):
        raise ValueError(f"{path}: the entry for {env_id} must be a mapping of hyperparameters, got "
                         f"{table[env_id]!r}")
    return dict(table[env_id])


class LinearSchedule:
    """rl-zoo's ``lin_<value>``: the value times the remaining progress (1 at the start, 0 at the end).

    Args:
        initial: The value at the start.
    """

    def __init__(self, initial: float):
        self.initial = initial

    def __call__(self, progress_remaining: float) -> float:
        """The value at ``progress_remaining`` (SB3's progress, from 1 down to 0)."""
        return progress_remaining * self.initial


def _schedule(key: str, value: Any, where: str) -> Any:
    """``value`` if it is a number > 0, a ``LinearSchedule`` for ``"lin_<number>"``, else a ValueError."""
    if isinstance(value, str):
        match = re.fullmatch(r"lin_([0-9.eE+-]+)", value.strip())
        try:
            initial = float(match.group(1)) if match else None
        except ValueError:
            initial = None
        if initial is None or not (np.isfinite(initial) and initial > 0):
            raise ValueError(f"{where}: {key} must be a number > 0 or a linear schedule such as 'lin_3e-4', "
                             f"got {value!r}")
        return LinearSchedule(initial)
    require_number(f"{where}: {key}", value, 0, low_open=True)
    return value


def check_hyperparameters(params: dict[str, Any], algo: str, where: str) -> dict[str, Any]:
    """Check every key of one env's hyperparameters before anything is built.

    Reserved keys get their own checks; the algorithm's keys must be parameters of its constructor, of the type of
    their default (int, float, bool), and in range where the range is known (``gamma`` in (0, 1], ``gae_lambda``
    and ``tau`` in [0, 1], sizes and counts >= 1, ``learning_rate`` > 0 or ``lin_<value>``).

    Args:
        params: The env's entry of the hyperparameter YAML.
        algo: The algorithm (one of ``ALGORITHMS``).
        where: The file and env id, for the errors.

    Returns:
        The algorithm's keyword arguments, schedules made.

    Raises:
        ValueError: For any bad key, naming ``where`` and the key.
    """
    def integer(key: str, minimum: int) -> None:
        value = params[key]
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{where}: {key} must be an int >= {minimum}, got {value!r}")

    for key, minimum in (("n_timesteps", 1), ("n_envs", 1), ("checkpoint_freq", 0), ("torch_threads", 1)):
        if key in params:
            integer(key, minimum)
    if "save_replay_buffer" in params:
        require_bool(f"{where}: save_replay_buffer", params["save_replay_buffer"])
    if "policy" in params and not isinstance(params["policy"], str):
        raise ValueError(f"{where}: policy must be a policy name such as MlpPolicy, got {params['policy']!r}")
    if "env_kwargs" in params and not isinstance(params["env_kwargs"], Mapping):
        raise ValueError(f"{where}: env_kwargs must be a mapping, got {params['env_kwargs']!r}")
    if params.get("vec_env", "dummy") not in (*VEC_ENV_CLASSES, NATIVE):
        raise ValueError(f"vec_env must be one of {sorted((*VEC_ENV_CLASSES, NATIVE))}, got {params['vec_env']!r} "
                         f"({where})")
    _normalize_kwargs(params.get("normalize", False))

    signature = inspect.signature(getattr(stable_baselines3, algo.upper()).__init__).parameters
    allowed = [name for name in signature if name not in NOT_FROM_CONFIG]
    kwargs: dict[str, Any] = {}
    for key, value in params.items():
        if key in RESERVED:
            continue
        if key not in allowed:
            raise ValueError(f"{where}: unknown key {key!r}; {algo.upper()} takes {allowed} and adaptstep "
                             f"{list(RESERVED)}")
        default = signature[key].default
        if key in SCHEDULED:
            value = _schedule(key, value, where)
        elif key in ("gamma",):
            require_number(f"{where}: {key}", value, 0, 1, low_open=True)
        elif key in ("gae_lambda", "tau"):
            require_number(f"{where}: {key}", value, 0, 1)
        elif isinstance(default, bool):
            value = require_bool(f"{where}: {key}", value)
        elif isinstance(default, int) and default is not None:
            if isinstance(value, bool) or not isinstance(value, int) or value < (1 if default >= 1 else 0):
                raise ValueError(f"{where}: {key} must be an int >= {1 if default >= 1 else 0}, got {value!r}")
        elif isinstance(default, float) and not (isinstance(value, str) and value.startswith("auto")):
            require_number(f"{where}: {key}", value, 0)  # coefficients, clip ranges, gradient norms: >= 0
        elif key in ("policy_kwargs", "replay_buffer_kwargs") and value is not None \
                and not isinstance(value, Mapping):
            raise ValueError(f"{where}: {key} must be a mapping, got {value!r}")
        kwargs[key] = value
    return kwargs


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


class AtomicCheckpointCallback(CheckpointCallback):
    """SB3's ``CheckpointCallback`` whose files are written to a temporary name and renamed.

    A run killed while saving never leaves a truncated file under a checkpoint's name; the normaliser's statistics
    (and the replay buffer, when saved) are written first, so a checkpoint never exists without them.
    """

    def _on_step(self) -> bool:
        if self.n_calls % self.save_freq == 0:
            normalizer = self.model.get_vec_normalize_env()
            if self.save_vecnormalize and normalizer is not None:
                with atomic_path(self._checkpoint_path("vecnormalize_", extension="pkl")) as temporary:
                    normalizer.save(temporary)
            if self.save_replay_buffer and getattr(self.model, "replay_buffer", None) is not None:
                with atomic_path(self._checkpoint_path("replay_buffer_", extension="pkl")) as temporary:
                    self.model.save_replay_buffer(temporary)
            with atomic_path(self._checkpoint_path(extension="zip")) as temporary:
                self.model.save(temporary)
        return True


class StopOnInterrupt(BaseCallback):
    """Turn Ctrl-C into a stop at the next step boundary, so that it never interrupts a checkpoint being written.

    While training runs in the main thread, SIGINT only sets ``interrupted``, and ``_on_step`` then ends training; a
    second Ctrl-C raises ``KeyboardInterrupt`` at once.
    """

    def __init__(self) -> None:
        super().__init__()
        self.interrupted = False
        self._previous: Any = None

    def _on_training_start(self) -> None:
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGINT, self._interrupt)

    def _interrupt(self, signum: int, frame: Any) -> None:
        if self.interrupted:
            raise KeyboardInterrupt
        self.interrupted = True

    def _on_step(self) -> bool:
        return not self.interrupted

    def _on_training_end(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGINT, self._previous)


def next_run_folder(env_id: str, algo: str, root: str | Path = "runs") -> Path:
    """Make and return a fresh folder ``root/<Env>-<algo>_N``.

    N follows rl-zoo's numbering (one more than the largest N there); the folder is made here so that two runs
    started at once never get the same one.
    """
    root = Path(root)
    stem = f"{env_id.split('/')[-1]}-{algo}"
    root.mkdir(parents=True, exist_ok=True)
    numbers = [int(match.group(1)) for child in root.iterdir()
               if (match := re.fullmatch(rf"{re.escape(stem)}_(\d+)", child.name))]
    number = max(numbers, default=0) + 1
    while True:
        folder = root / f"{stem}_{number}"
        try:
            folder.mkdir()
            return folder
        except FileExistsError:
            number += 1


def _clear_run(out: Path, overwrite: bool) -> None:
    """Refuse a folder holding another run's files, or remove them with ``overwrite``."""
    present = [name for name in RUN_FILES if (out / name).exists()]
    if not present:
        return
    if not overwrite:
        raise FileExistsError(f"{out} holds the files of another run ({', '.join(present)}); choose another --out "
                              "or pass --overwrite to remove them")
    for name in present:
        path = out / name
        shutil.rmtree(path) if path.is_dir() and not path.is_symlink() else path.unlink()


def _save(model: Any, vec_env: Any, out: Path, normalize: bool, replay_buffer: bool = False) -> Path:
    """The model (and the normaliser and replay buffer first), each written atomically."""
    if normalize:
        with atomic_path(out / VECNORMALIZE_FILE) as temporary:
            vec_env.save(temporary)
    if replay_buffer and getattr(model, "replay_buffer", None) is not None:
        with atomic_path(out / REPLAY_BUFFER_FILE) as temporary:
            model.save_replay_buffer(temporary)
    with atomic_path(out / "model.zip") as temporary:
        model.save(temporary)
    return out / "model.zip"


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
    resume: bool = False,
    eval_freq: int = 0,
    eval_episodes: int = 5,
    on_evaluation: Callable[[dict[str, float]], None] | None = None,
) -> Path:
    """Train and save ``out/model.zip`` with ``out/run.yaml``, checkpoints and TensorBoard logs.

    Args:
        env_id: A registered env id.
        algo: ``"ppo"``, ``"sac"`` or ``"dqn"``.
        out: The run's folder.
        config: The hyperparameter YAML; None for the project's ``agents/<algo>.yml``.
        timesteps: Environment steps to train (in all, when resuming); None for the entry's ``n_timesteps``.
        seed: The training seed (>= 0).
        env_kwargs: Env kwargs on top of the entry's ``env_kwargs``.
        progress_bar: Show SB3's progress bar.
        overwrite: Remove another run's files from ``out`` instead of refusing the folder.
        resume: Continue the run in ``out`` from its newest complete checkpoint, with the hyperparameters, env
            kwargs and seed of its ``run.yaml`` (``config``, ``env_kwargs`` and ``seed`` are then not used).
        eval_freq: Environment steps between held-out evaluations that keep ``best_model.zip``; 0 for none.
        eval_episodes: Episodes per held-out evaluation.
        on_evaluation: Called with each held-out evaluation's row (``HeldOutEvaluation``).

    Returns:
        The path of the saved model.

    Raises:
        ValueError: For bad hyperparameters or env kwargs, or a run that cannot be resumed, before anything is
            built or written.
        FileExistsError: If ``out`` holds another run's files and neither ``overwrite`` nor ``resume`` is set.
        adaptstep.io.FolderInUse: If another process trains into ``out``.
        KeyboardInterrupt: After Ctrl-C, once the model at the current step is saved (``run.yaml`` says
            ``complete: false``).
    """
    out = Path(out)
    family_of(env_id)
    if isinstance(seed, bool) or not (isinstance(seed, (int, np.integer)) and seed >= 0):
        raise ValueError(f"seed must be an int >= 0, got {seed!r}")
    for name, value, minimum in (("eval_freq", eval_freq, 0), ("eval_episodes", eval_episodes, 1)):
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            raise ValueError(f"{name} must be an int >= {minimum}, got {value!r}")
    if resume:
        previous = _resumable(out, env_id, algo)
        params, seed = dict(previous["hyperparameters"]), int(previous["seed"])
        where, kwargs = f"{out / RUN_FILE} ({env_id})", dict(previous["env_kwargs"] or {})
        total = timesteps if timesteps is not None else previous["timesteps"]
        spent = float(previous.get("train_seconds") or 0.0)  # the earlier segments' training time
    else:
        spent = 0.0
        path = config_file(algo, config)
        params = hyperparameters(algo, env_id, config)
        where = f"{path} ({env_id})"
        kwargs = {**params.get("env_kwargs", {}), **dict(env_kwargs or {})}
        total = timesteps if timesteps is not None else params.get("n_timesteps")
    algo_kwargs = check_hyperparameters(params, algo, where)
    if isinstance(total, bool) or not isinstance(total, (int, np.integer)) or total < 1:
        raise ValueError(f"timesteps must be >= 1, got {total!r}" if timesteps is not None
                         else f"{where}: n_timesteps must be an int >= 1, got {total!r}")
    total = int(total)
    check_env_kwargs(env_id, kwargs)
    n_envs = int(params.get("n_envs", 1))
    normalize = _normalize_kwargs(params.get("normalize", False))
    keep_buffer = bool(params.get("save_replay_buffer", False))

    with folder_lock(out, "`adaptstep train`"):
        start = newest_checkpoint(out, previous, normalize is not None) if resume else None
        if start is not None and start.steps >= total:
            raise ValueError(f"--resume {out}: its newest checkpoint is at step {start.steps}, not before the "
                             f"{total} steps asked; pass a larger --timesteps")
        if not resume:
            _clear_run(out, overwrite)
        run = {"algo": algo, "env_id": env_id, "env_kwargs": kwargs, "timesteps": total, "seed": seed,
               "hyperparameters": params, "complete": False}
        if start is not None:
            run["resumed_from"] = {"checkpoint": str(start.model.relative_to(out)), "steps": start.steps}
            if start.model == out / "model.zip":  # still its step if this run dies before saving again
                run["interrupted_at"] = start.steps
        atomic_write_text(out / RUN_FILE, yaml.safe_dump(run, sort_keys=False))
        kind = params.get("vec_env", NATIVE if "n_envs" in params else "dummy")
        vec_env = training_vec_env(env_id, n_envs, seed, {"render_mode": None, **kwargs}, kind)
        if start is not None and start.normalizer is not None:
            vec_env = VecNormalize.load(str(start.normalizer), vec_env)
            vec_env.training = True
        elif normalize is not None:
            vec_env = VecNormalize(vec_env, gamma=float(params.get("gamma", 0.99)), **normalize)
        torch.set_num_threads(int(params.get("torch_threads", 1)))
        algorithm = getattr(stable_baselines3, algo.upper())
        try:
            if start is not None:
                model = algorithm.load(start.model, env=vec_env, tensorboard_log=str(out / "tb"),
                                       device=algo_kwargs.get("device", "auto"))
                if start.replay_buffer is not None:
                    model.load_replay_buffer(start.replay_buffer)
            else:
                model = algorithm(params.get("policy", "MlpPolicy"), vec_env, seed=seed,
                                  tensorboard_log=str(out / "tb"), verbose=0, **algo_kwargs)
        except (ValueError, TypeError, AssertionError, KeyError) as error:
            vec_env.close()
            raise ValueError(f"{where}: the {algo.upper()} hyperparameters do not build: {error}") from None
        callbacks: list[BaseCallback] = []
        if params.get("checkpoint_freq"):
            callbacks.append(AtomicCheckpointCallback(max(int(params["checkpoint_freq"]) // n_envs, 1),
                                                      str(out / "checkpoints"), name_prefix="model",
                                                      save_replay_buffer=keep_buffer,
                                                      save_vecnormalize=normalize is not None))
        if eval_freq:
            eval_env = training_vec_env(env_id, 1, seed, {"render_mode": None, **kwargs}, kind)  # same wrappers
            if normalize is not None:
                eval_env = VecNormalize(eval_env, training=False, norm_reward=False,
                                        **{key: value for key, value in normalize.items() if key != "norm_reward"})
            callbacks.append(HeldOutEvaluation(env_id, eval_env, max(eval_freq // n_envs, 1), eval_episodes, out,
                                               on_evaluation))
        started, stop = time.perf_counter(), StopOnInterrupt()
        done = start.steps if start is not None else 0
        try:
            model.learn(total_timesteps=total - done, callback=[*callbacks, stop], progress_bar=progress_bar,
                        tb_log_name=algo, reset_num_timesteps=start is None)
        except KeyboardInterrupt:  # a second Ctrl-C stops at once
            stop.interrupted = True
        seconds = spent + time.perf_counter() - started
        _close(vec_env)
        model_path = _save(model, vec_env, out, normalize is not None, keep_buffer)
        if stop.interrupted:
            run.update(interrupted_at=int(model.num_timesteps), train_seconds=round(seconds, 1))
            atomic_write_text(out / RUN_FILE, yaml.safe_dump(run, sort_keys=False))
            raise KeyboardInterrupt(f"saved {model_path} at step {model.num_timesteps} of {total}; {out / RUN_FILE} "
                                    "marks the run incomplete")
        run.pop("interrupted_at", None)
        run.update(complete=True, num_timesteps=int(model.num_timesteps), train_seconds=round(seconds, 1))
        atomic_write_text(out / RUN_FILE, yaml.safe_dump(run, sort_keys=False))
    return model_path


def training_vec_env(env_id: str, n_envs: int, seed: int, kwargs: dict[str, Any], kind: str) -> VecEnv:
    """The SB3 ``VecEnv`` that trains on ``env_id``: N episodes with actions rescaled to [-1, 1].

    ``kind="native"``: the env id's own vector env (``gym.make_vec(..., vectorization_mode="vector_entry_point")``)
    behind ``GymnasiumVecEnv`` and ``VecMonitor``; an id without one, or whose vector env refuses these kwargs (e.g. a
    backend it does not batch), falls back to ``DummyVecEnv``. ``"dummy"``/``"subproc"``: SB3's ``make_vec_env``.
    """
    if kind == NATIVE and gym.spec(env_id).vector_entry_point is not None:
        try:
            native = gym.make_vec(env_id, num_envs=n_envs, vectorization_mode="vector_entry_point",
                                  autoreset_mode="SameStep", **kwargs)
        except ValueError:  # kwargs were checked: this vector env does not batch them
            native = None
        if native is not None:
            vec_env = VecMonitor(GymnasiumVecEnv(native))
            vec_env.seed(seed)
            vec_env.action_space.seed(seed)
            return vec_env
    return make_vec_env(env_id, n_envs=n_envs, seed=seed, env_kwargs=kwargs, wrapper_class=normalized_actions,
                        vec_env_cls=VEC_ENV_CLASSES.get(kind, DummyVecEnv))


def _resumable(out: Path, env_id: str, algo: str) -> dict[str, Any]:
    """The ``run.yaml`` of the run in ``out``, checked against the env and algorithm asked for.

    Raises:
        ValueError: If ``out`` holds no run, or one of another env or algorithm.
    """
    try:
        run_file, run = run_record(out / "model.zip")
    except FileNotFoundError:
        raise ValueError(f"--resume {out}: no {RUN_FILE} there (a folder written by `adaptstep train`)") from None
    for key, value in (("env_id", env_id), ("algo", algo)):
        if run.get(key) != value:
            raise ValueError(f"--resume {out}: {run_file} has {key} {run.get(key)!r}, not {value!r}")
    missing = [key for key in ("hyperparameters", "seed", "timesteps", "env_kwargs") if key not in run]
    if missing:
        raise ValueError(f"--resume {out}: {run_file} lacks {missing}")
    return run


def _close(vec_env: Any) -> None:
    try:
        vec_env.close()
    except (EOFError, BrokenPipeError, ConnectionResetError):  # subprocess workers already ended by the signal
        pass
