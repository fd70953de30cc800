"""The env side of the contract: what every family's Gymnasium env declares and offers the harness.

An env wraps one process (``adaptstep.core.process.Process``). It declares its quality metrics with their
direction, the unit of its cost, the kwargs a trained agent depends on and the entries of its final ``info`` that
belong in the harness row; it turns a hand-made controller's parameters into an action (``baseline_action``) and
reports an episode's non-deterministic timings apart from ``info`` (``timings``), so that ``info`` stays
deterministic for ``gymnasium.utils.env_checker.check_env``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import gymnasium as gym


@dataclass(frozen=True)
class Metric:
    """A quality metric that an env reports in its final ``info``.

    Attributes:
        name: The key in ``info`` and the harness table's column.
        higher_is_better: True for scores (success, reward), False for errors and distances.
        description: One line for tables and docs.
    """

    name: str
    higher_is_better: bool = False
    description: str = ""


class AdaptiveEnv(gym.Env):
    """Base of every adaptstep env: a Gymnasium env whose episode is one run of a stepped process.

    Subclasses set the class attributes and implement ``baseline_action``. The final ``info`` of an episode holds
    ``cost`` (in ``cost_unit``), every metric of ``metrics``, every key of ``summary_keys`` and ``failure`` (None,
    or why the episode ended early); ``gym.make``'s ``WallTime`` wrapper adds ``wall_time`` and ``timings()``.
    """

    metrics: ClassVar[tuple[Metric, ...]] = ()
    cost_unit: ClassVar[str] = ""
    agent_kwargs: ClassVar[tuple[str, ...]] = ()  # env kwargs that define a trained agent's observations and actions
    summary_keys: ClassVar[tuple[str, ...]] = ()  # further final-info entries of the harness row
    timing_keys: ClassVar[tuple[str, ...]] = ()  # the keys of ``timings()``, also in the harness row

    @property
    def metric_names(self) -> tuple[str, ...]:
        """The names of ``metrics``, in order (the first is the headline quality)."""
        return tuple(metric.name for metric in self.metrics)

    def baseline_action(self, **parameters: Any) -> Any:
        """The action that applies a hand-made controller's ``parameters`` at the current state.

        Args:
            **parameters: The env's own parameter names (e.g. ``eta=0.01`` for the three-body integrator,
                ``budget=3`` for a planner, ``t_next=0.5, order=2`` for a sampler).

        Returns:
            An element of ``action_space``.
        """
        raise NotImplementedError(f"{type(self).__name__} takes no baseline parameters")

    def timings(self) -> dict[str, float]:
        """The episode's seconds so far (keys ``timing_keys``), kept out of ``info`` so that it repeats exactly."""
        return {}


def check_parameters(env: AdaptiveEnv, parameters: dict[str, Any], allowed: tuple[str, ...],
                     required: tuple[str, ...] | None = None) -> None:
    """Check a hand-made controller's parameters against those an env takes.

    Args:
        env: The env, named in the error.
        parameters: The controller's parameters.
        allowed: Every parameter name the env takes.
        required: The names that must be given; None means all of ``allowed``.

    Raises:
        ValueError: If ``parameters`` name something ``env`` does not take or miss one it needs.
    """
    required = allowed if required is None else required
    unknown = sorted(set(parameters) - set(allowed))
    missing = sorted(set(required) - set(parameters))
    if unknown or missing:
        raise ValueError(f"{type(env).__name__} baseline parameters must be {list(allowed)}, got {sorted(parameters)}")
