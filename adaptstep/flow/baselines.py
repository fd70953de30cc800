"""Hand-made quota rules as controllers of ``adaptstep/BudgetForcing-v0``.

``budget:rbf`` (rollover budget forcing), ``budget:svdd`` (a uniform quota, argmax) and ``budget:linear``
(linearly decreasing quotas). Each controller asks its ``adaptstep.flow.chains`` policy for the quota of the env's
current decision and returns the action that yields it, so on the env it reproduces ``run_quota_method`` with one
chain exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import gymnasium as gym
import numpy as np

from adaptstep.flow.chains import QUOTA_POLICIES
from adaptstep.flow.env import BudgetForcingEnv


class QuotaController:
    """Follow a quota rule.

    Args:
        name: The controller's name.
        rule: One of ``QUOTA_POLICIES``.
        options: Keyword arguments of the rule's class (``init_fraction`` for ``rbf``).
        env_overrides: Env kwargs for this controller; ``mode="quota"`` and the rule's ``early_accept`` are set.

    Raises:
        ValueError: If ``rule`` is unknown.
    """

    def __init__(self, name: str, rule: str, options: Mapping[str, Any] | None = None,
                 env_overrides: Mapping[str, Any] | None = None) -> None:
        if rule not in QUOTA_POLICIES:
            raise ValueError(f"budget rule must be one of {sorted(QUOTA_POLICIES)}, got {rule!r}")
        self.name, self.policy = name, QUOTA_POLICIES[rule](**dict(options or {}))
        self.env_overrides = {"mode": "quota", "early_accept": self.policy.early_accept, **dict(env_overrides or {})}

    def reset(self, env: gym.Env, seed: int | None = None) -> None:
        """Check that the env is ``adaptstep/BudgetForcing-v0`` in quota mode with the rule's ``early_accept``."""
        self._env = env.unwrapped
        if not isinstance(self._env, BudgetForcingEnv):
            raise ValueError(f"controller {self.name!r} needs adaptstep/BudgetForcing-v0, got {self._env}")
        if self._env.mode != "quota" or self._env.early_accept != self.policy.early_accept:
            raise ValueError(f"controller {self.name!r} needs mode='quota' and early_accept="
                             f"{self.policy.early_accept} (the harness applies its env_overrides)")

    def act(self, observation: np.ndarray) -> np.ndarray:
        """The action that yields the rule's quota for the current decision."""
        return self._env.baseline_action(quota=int(self.policy.quotas(self._env.chains)[0]))


def budget(name: str, env_overrides: Mapping[str, Any], value: str = "", **options: Any) -> QuotaController:
    """A hand-made quota rule of ``adaptstep/BudgetForcing-v0`` (``budget:rbf``, ``budget:svdd``, ``budget:linear``)."""
    return QuotaController(name, value, options, env_overrides)
