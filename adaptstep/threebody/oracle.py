"""A lookahead oracle for the three-body env: a reference point, not a practical controller.

Before every interval it integrates a copy of the current state with each η of a grid and takes
the one minimising n(η) + |δE(η)/E0| / μ, the per-interval optimum of "total force evaluations
subject to a budget on the summed energy-error increments" (Lagrange multiplier μ). Its trial
integrations are hidden compute that the env's ``cost`` does not count. A trial starts a fresh integrator from
the state, so it does not know the env integrator's adapted step (approximate for adaptive backends).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from adaptstep.threebody.env import ThreeBodyEnv
from adaptstep.threebody.process import ThreeBodyProcess


class LookaheadOracle:
    """``oracle:mu=1e-10``: per-interval greedy choice of η with full knowledge of each option's outcome."""

    def __init__(self, name: str, mu: float, grid_size: int = 16, env_overrides: Mapping[str, Any] | None = None):
        if not (np.isfinite(mu) and mu > 0):
            raise ValueError(f"mu must be finite and > 0, got {mu}")
        if grid_size < 2:
            raise ValueError(f"grid_size must be >= 2, got {grid_size}")
        self.name = name
        self.mu = float(mu)
        self.grid_size = int(grid_size)
        self.env_overrides = dict(env_overrides or {})
        self._env: Any = None

    def reset(self, env: gym.Env, seed: int | None = None) -> None:
        """Check that the env is ``adaptstep/ThreeBody-v0`` and lay out the parameter grid."""
        self._env = env.unwrapped
        if not isinstance(self._env, ThreeBodyEnv):
            raise ValueError(f"controller {self.name!r} needs adaptstep/ThreeBody-v0, got {self._env}")
        self._grid = np.logspace(*self._env.log_range, self.grid_size)

    def act(self, observation: np.ndarray) -> Any:
        """The grid value with the best lookahead score over the next interval."""
        env, process = self._env, self._env.process
        interval = env.next_interval_end() - process.time
        exact = env.interval_end == "exact"
        state, energy = process.snapshot(), process.integrator.energy()
        best_score, best = np.inf, self._grid[0]
        for value in self._grid:
            trial = ThreeBodyProcess(state, env.backend, env.max_force_evaluations_per_step)
            result = trial.advance(interval, value, exact=exact)
            if result.failure is not None:
                continue
            drift = abs(trial.integrator.energy() - energy) / abs(process.initial_energy)
            score = result.cost + drift / self.mu
            if score < best_score:
                best_score, best = score, value
        return env.baseline_action(param=best)
