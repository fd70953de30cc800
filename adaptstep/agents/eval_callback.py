"""SB3's ``EvalCallback`` habit on held-out seeds: evaluate every ``eval_freq`` steps, keep the best model.

Every evaluation plays the same ``episodes`` episodes, from ``reset(seed=EVAL_SEED)`` of a separate env (training
episodes draw their seeds from the training seed's generator, so they never repeat these), deterministically.
The model with the best mean return is written to ``best_model.zip`` (and ``best_vecnormalize.pkl``) through
the atomic path; each evaluation appends a row ``timesteps, mean_return, std_return, <first metric>_median`` to
``eval/log.csv``.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.vec_env import VecEnv, VecNormalize, sync_envs_normalization

from adaptstep.agents.controllers import BEST_MODEL_FILE, BEST_VECNORMALIZE_FILE
from adaptstep.core.registry import env_class
from adaptstep.io import atomic_path, atomic_write_text

EVAL_SEED = 1_000_000  # the held-out evaluation episodes' first reset seed
EVAL_LOG = "eval/log.csv"


class HeldOutEvaluation(BaseCallback):
    """Evaluate on fixed held-out episodes every ``every`` calls and keep the best model.

    Args:
        env_id: The env id (its first metric is logged beside the return).
        eval_env: A one-env VecEnv, wrapped like the training env (a ``VecNormalize`` that does not update).
        every: Callback calls (vector steps) between evaluations.
        episodes: Episodes per evaluation.
        out: The run folder.
        on_evaluation: Called with each evaluation's row (e.g. to report it to an Optuna trial, which may raise
            ``optuna.TrialPruned`` to end training).
    """

    def __init__(self, env_id: str, eval_env: VecEnv, every: int, episodes: int, out: Path,
                 on_evaluation: Callable[[dict[str, float]], None] | None = None):
        super().__init__()
        self.eval_env, self.every, self.episodes, self.out = eval_env, every, episodes, Path(out)
        self.on_evaluation = on_evaluation
        self.metric = env_class(env_id).metrics[0].name
        self.best = _best_so_far(self.out / EVAL_LOG)
        self._values: list[float] = []

    def _collect(self, local: dict[str, Any], _: dict[str, Any]) -> None:
        if local["done"]:
            self._values.append(float(local["info"].get(self.metric, np.nan)))

    def _on_step(self) -> bool:
        if self.n_calls % self.every:
            return True
        if isinstance(self.eval_env, VecNormalize):
            sync_envs_normalization(self.training_env, self.eval_env)
        self.eval_env.seed(EVAL_SEED)
        self._values = []
        returns, _ = evaluate_policy(self.model, self.eval_env, n_eval_episodes=self.episodes, deterministic=True,
                                     return_episode_rewards=True, callback=self._collect)
        row = {"timesteps": self.num_timesteps, "mean_return": float(np.mean(returns)),
               "std_return": float(np.std(returns)), f"{self.metric}_median": float(np.nanmedian(self._values))}
        self._append(row)
        self.logger.record("eval/mean_reward", row["mean_return"])
        if self.on_evaluation is not None:
            self.on_evaluation(row)
        if row["mean_return"] > self.best:
            self.best = row["mean_return"]
            if isinstance(self.eval_env, VecNormalize):
                with atomic_path(self.out / BEST_VECNORMALIZE_FILE) as temporary:
                    self.eval_env.save(temporary)
            with atomic_path(self.out / BEST_MODEL_FILE) as temporary:
                self.model.save(temporary)
        return True

    def _append(self, row: dict[str, float]) -> None:
        path = self.out / EVAL_LOG
        lines = path.read_text() if path.is_file() else ",".join(row) + "\n"
        atomic_write_text(path, lines + ",".join(f"{value:.6g}" for value in row.values()) + "\n")


def _best_so_far(path: Path) -> float:
    """The best mean return in an evaluation log (a resumed run keeps its best model), -inf without one."""
    if not path.is_file():
        return -np.inf
    with path.open() as file:
        values = [float(row["mean_return"]) for row in csv.DictReader(file)]
    return max(values, default=-np.inf)
