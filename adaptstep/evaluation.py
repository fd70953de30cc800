"""The one evaluation harness: any controller on any env, over the same seeds, into one tidy table.

Rows are episodes: ``controller, seed, steps, return, cost, <the env's metrics>, wall_time,
episode_seconds, failure``. The CLI, the notebooks and the benchmarks all read this table.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

import adaptstep.envs  # noqa: F401  (registers the env ids)


def _as_controller(controller: Any):
    if isinstance(controller, str):
        from adaptstep.agents.controllers import parse_controller

        return parse_controller(controller)
    return controller


def run_episode(env: gym.Env, controller: Any, seed: int) -> dict[str, Any]:
    """One episode of ``controller`` on ``env`` from ``reset(seed=seed)``; returns its table row."""
    started = time.perf_counter()
    observation, info = env.reset(seed=seed)
    controller.reset(env, seed=seed)
    total_reward, steps, done = 0.0, 0, False
    while not done:
        observation, reward, terminated, truncated, info = env.step(controller.act(observation))
        total_reward += reward
        steps += 1
        done = terminated or truncated
    row = {
        "controller": controller.name,
        "seed": seed,
        "steps": steps,
        "return": total_reward,
        "cost": info["cost"],
        **{metric: info[metric] for metric in env.unwrapped.metrics},
        "wall_time": info["wall_time"],
        "episode_seconds": time.perf_counter() - started,
        "failure": info.get("failure") or "",
    }
    return row


def evaluate(
    env_id: str,
    controllers: Sequence[Any],
    episodes: int = 10,
    seed: int = 0,
    env_kwargs: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Run each controller (object or SPEC string) for ``episodes`` episodes on seeds seed, seed+1, ...

    Every controller sees the same seeds, hence the same initial states. A controller's
    ``env_overrides`` update ``env_kwargs`` for its episodes only.
    """
    if episodes < 1:
        raise ValueError(f"episodes must be >= 1, got {episodes}")
    resolved = [_as_controller(controller) for controller in controllers]
    if not resolved:
        raise ValueError("controllers must name at least one controller")
    names = [controller.name for controller in resolved]
    if len(set(names)) != len(names):
        raise ValueError(f"controllers must have distinct names, got {names}")
    rows = []
    with tqdm(total=episodes * len(resolved), desc="evaluate", unit="episode", disable=not progress) as bar:
        for controller in resolved:
            env = gym.make(env_id, **{**dict(env_kwargs or {}), **controller.env_overrides})
            try:
                for episode in range(episodes):
                    rows.append(run_episode(env, controller, seed + episode))
                    bar.update()
            finally:
                env.close()
    return pd.DataFrame(rows)


# metrics where more is better (all others: less)
HIGHER_IS_BETTER = frozenset({"reward", "heldout_reward", "normalized_score", "success"})


def env_class(env_id: str) -> type[gym.Env]:
    """The registered env's class, without building an env (for class attributes such as ``cost_unit``)."""
    from gymnasium.envs.registration import load_env_creator

    return load_env_creator(gym.spec(env_id).entry_point)


def metric_columns(table: pd.DataFrame) -> list[str]:
    """The quality-metric columns of a harness table (everything an env reported beyond the fixed ones)."""
    fixed = {"controller", "seed", "steps", "return", "cost", "wall_time", "episode_seconds", "failure"}
    return [column for column in table.columns if column not in fixed]


def summarize(table: pd.DataFrame) -> pd.DataFrame:
    """Per controller: episodes, failures, median and IQR of cost and every metric, mean return; ``pareto``
    marks the controllers no other beats in cost and the first metric (``HIGHER_IS_BETTER`` ones maximised).

    Failed episodes count in the medians with the value at failure (a failure cannot hide).
    """
    metrics = metric_columns(table)

    def describe(group: pd.DataFrame) -> pd.Series:
        out: dict[str, Any] = {"episodes": len(group), "failures": int((group["failure"] != "").sum())}
        for column in ["cost", *metrics]:
            values = group[column].to_numpy(dtype=float)
            q25, median, q75 = np.nanpercentile(values, [25, 50, 75])
            out[f"{column}_median"], out[f"{column}_q25"], out[f"{column}_q75"] = median, q25, q75
        out["return_mean"] = group["return"].mean()
        out["wall_time_median"] = group["wall_time"].median()
        return pd.Series(out)

    summary = table.groupby("controller", sort=False).apply(describe, include_groups=False)
    quality = summary[f"{metrics[0]}_median"].to_numpy(dtype=float)
    summary["pareto"] = pareto_mask(summary["cost_median"].to_numpy(), -quality if metrics[0] in HIGHER_IS_BETTER
                                    else quality)
    return summary


def pareto_mask(cost: np.ndarray, error: np.ndarray) -> np.ndarray:
    """True where no other point has both cost and error <= and one of them < (lower is better)."""
    cost, error = np.asarray(cost, dtype=float), np.asarray(error, dtype=float)
    dominated = (cost[None, :] <= cost[:, None]) & (error[None, :] <= error[:, None])
    strictly = (cost[None, :] < cost[:, None]) | (error[None, :] < error[:, None])
    return ~np.any(dominated & strictly, axis=1)
