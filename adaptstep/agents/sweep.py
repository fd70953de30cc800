"""K training seeds of one config through an executor, each evaluated on the same held-out episodes.

Each seed is one task (train into ``out/seed_<s>``, then ``evaluate`` its model on ``episodes`` held-out
episodes), so seeds run in parallel on local processes or a Ray cluster (``adaptstep.core.executors``). A seed's
score is the median of the env's first metric over its episodes; across seeds the report gives the mean with a
percentile-bootstrap 95% CI (resampling seeds) and the interquartile mean (IQM: the mean of the middle 50% of the
seeds' scores, rliable's robust aggregate; Agarwal et al., 2021, "Deep RL at the Edge of the Statistical Precipice").
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from scipy.stats import trim_mean

from adaptstep.agents.training import train
from adaptstep.core.executors import Executor, SerialExecutor
from adaptstep.core.registry import env_class
from adaptstep.evaluation import evaluate

BOOTSTRAP_RESAMPLES = 10_000


def train_and_score(task: tuple[str, str, str, str | None, int | None, int, dict[str, Any], int, int]) -> dict:
    """One seed: train, then evaluate its model on the held-out episodes (an executor task).

    Args:
        task: (env id, algo, run folder, config, timesteps, training seed, env kwargs, episodes, first episode
            seed).

    Returns:
        ``seed``, ``score`` (the median of the first metric) and ``model`` (the model's path).
    """
    env_id, algo, out, config, timesteps, seed, env_kwargs, episodes, first = task
    model = train(env_id, algo, out, config=config, timesteps=timesteps, seed=seed, env_kwargs=env_kwargs,
                  progress_bar=False, overwrite=True)
    table = evaluate(env_id, [str(model)], episodes=episodes, seed=first, progress=False,
                     executor=SerialExecutor())
    metric = env_class(env_id).metrics[0].name
    return {"seed": seed, "score": float(table[metric].median()), "model": str(model)}


def sweep(env_id: str, algo: str, seeds: list[int], out: str | Path, config: str | None = None,
          timesteps: int | None = None, env_kwargs: Mapping[str, Any] | None = None, episodes: int = 10,
          eval_seed: int = 1000, executor: Executor | None = None) -> pd.DataFrame:
    """Train and score every seed; one row per seed, sorted by seed.

    Raises:
        ValueError: If ``seeds`` is empty or repeats a seed.
    """
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct and at least one, got {seeds!r}")
    tasks = [(env_id, algo, str(Path(out) / f"seed_{seed}"), config, timesteps, seed, dict(env_kwargs or {}),
              episodes, eval_seed) for seed in seeds]
    rows = list((executor or SerialExecutor()).map(train_and_score, tasks))
    return pd.DataFrame(rows).sort_values("seed").reset_index(drop=True)


def aggregate(scores: np.ndarray, seed: int = 0) -> dict[str, float]:
    """Mean with a percentile-bootstrap 95% CI over seeds, and the interquartile mean.

    Args:
        scores: One score per training seed.
        seed: The bootstrap's random seed.
    """
    scores = np.asarray(scores, dtype=float)
    rng = np.random.default_rng(seed)
    means = scores[rng.integers(0, len(scores), (BOOTSTRAP_RESAMPLES, len(scores)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {"seeds": len(scores), "mean": float(scores.mean()), "ci_low": float(low), "ci_high": float(high),
            "iqm": float(trim_mean(scores, 0.25))}
