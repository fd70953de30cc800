"""The one evaluation harness: any controller on any env, over the same seeds, into one tidy table.

Rows are episodes: ``controller, seed, steps, return, cost, <the env's metrics>, <its summary and timing keys>,
wall_time, episode_seconds, failure``, every value taken from the episode's final ``info`` (the env's contract,
``adaptstep.core.contract.AdaptiveEnv``). The CLI, the notebooks and the benchmarks all read this table; its
``attrs["metrics"]`` maps each metric to whether higher is better.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from adaptstep.agents.controllers import Controller, parse_controller
from adaptstep.core.contract import AdaptiveEnv
from adaptstep.core.registry import env_class

FIXED_COLUMNS = ("controller", "seed", "steps", "return", "cost", "wall_time", "episode_seconds", "failure")


def play_episode(env: gym.Env, controller: Controller, seed: int) -> dict[str, Any]:
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
    contract: AdaptiveEnv = env.unwrapped
    return {
        "controller": controller.name,
        "seed": seed,
        "steps": steps,
        "return": total_reward,
        "cost": info["cost"],
        **{key: info[key] for key in (*contract.metric_names, *contract.summary_keys, *contract.timing_keys)},
        "wall_time": info["wall_time"],
        "episode_seconds": time.perf_counter() - started,
        "failure": info.get("failure") or "",
    }


def evaluate(
    env_id: str,
    controllers: Sequence[Controller | str],
    episodes: int = 10,
    seed: int = 0,
    env_kwargs: Mapping[str, Any] | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """Run each controller for ``episodes`` episodes on seeds seed, seed+1, ...

    Every controller sees the same seeds, hence the same initial states. A controller's ``env_overrides`` update
    ``env_kwargs`` for its episodes only.

    Args:
        env_id: A registered env id (``adaptstep envs`` lists them).
        controllers: Controller objects or SPEC strings (``fixed:eta=0.01``, ``runs/x/model.zip``).
        episodes: Episodes per controller.
        seed: The first episode's seed.
        env_kwargs: Keyword arguments of ``gym.make``.
        progress: Show a progress bar.

    Returns:
        One row per episode (see the module docstring).
    """
    if isinstance(episodes, bool) or not (isinstance(episodes, int) and episodes >= 1):
        raise ValueError(f"episodes must be an int >= 1, got {episodes!r}")
    resolved = [parse_controller(controller) if isinstance(controller, str) else controller
                for controller in controllers]
    if not resolved:
        raise ValueError("controllers must name at least one controller")
    names = [controller.name for controller in resolved]
    if len(set(names)) != len(names):
        raise ValueError(f"controllers must have distinct names, got {names}")
    rows, directions = [], {}
    with tqdm(total=episodes * len(resolved), desc="evaluate", unit="episode", disable=not progress) as bar:
        for controller in resolved:
            env = gym.make(env_id, **{**dict(env_kwargs or {}), **controller.env_overrides})
            directions.update({metric.name: metric.higher_is_better for metric in env.unwrapped.metrics})
            try:
                for episode in range(episodes):
                    rows.append(play_episode(env, controller, seed + episode))
                    bar.update()
            finally:
                env.close()
    table = pd.DataFrame(rows)
    table.attrs["metrics"] = directions
    return table


def metric_directions(table: pd.DataFrame, env_id: str | None = None) -> dict[str, bool]:
    """Each metric column of a harness table -> whether higher is better: from ``table.attrs`` (set by
    ``evaluate``) or, for a table read back from CSV, from the class of ``env_id``."""
    if table.attrs.get("metrics"):
        return dict(table.attrs["metrics"])
    if env_id is None:
        raise ValueError("env_id must name the table's env (a table read from CSV does not say which metrics "
                         "it holds)")
    return {metric.name: metric.higher_is_better for metric in env_class(env_id).metrics
            if metric.name in table.columns}


def summarize(table: pd.DataFrame, env_id: str | None = None) -> pd.DataFrame:
    """Per controller: episodes, failures, median and IQR of cost and every metric, mean return; ``pareto``
    marks the controllers no other beats in median cost and median first metric (in the metric's direction).

    Failed episodes count in the medians with the value at failure (a failure cannot hide). ``env_id`` is needed
    only for a table read back from CSV (see ``metric_directions``).
    """
    directions = metric_directions(table, env_id)
    metrics = list(directions)

    def describe(group: pd.DataFrame) -> pd.Series:
        failed = group["failure"].astype("string").fillna("") != ""  # a CSV read back holds NaN for ""
        out: dict[str, Any] = {"episodes": len(group), "failures": int(failed.sum())}
        for column in ["cost", *metrics]:
            values = group[column].to_numpy(dtype=float)
            q25, median, q75 = np.nanpercentile(values, [25, 50, 75])
            out[f"{column}_median"], out[f"{column}_q25"], out[f"{column}_q75"] = median, q25, q75
        out["return_mean"] = group["return"].mean()
        out["wall_time_median"] = group["wall_time"].median()
        return pd.Series(out)

    summary = table.groupby("controller", sort=False).apply(describe, include_groups=False)
    quality = summary[f"{metrics[0]}_median"].to_numpy(dtype=float)
    summary["pareto"] = pareto_mask(summary["cost_median"].to_numpy(), -quality if directions[metrics[0]] else quality)
    return summary


def pareto_mask(cost: np.ndarray, error: np.ndarray) -> np.ndarray:
    """True where no other point has both cost and error <= and one of them < (lower is better)."""
    cost, error = np.asarray(cost, dtype=float), np.asarray(error, dtype=float)
    dominated = (cost[None, :] <= cost[:, None]) & (error[None, :] <= error[:, None])
    strictly = (cost[None, :] < cost[:, None]) | (error[None, :] < error[:, None])
    return ~np.any(dominated & strictly, axis=1)
