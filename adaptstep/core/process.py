"""The process side of the contract: a stepped numerical process, with no Gymnasium in sight."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class Process(Protocol):
    """A stepped process: an integrator, a sampler, a search, a planner or a policy acting in its task.

    Each family's process advances under a step parameter chosen from outside (its env's action), counts its cost
    in its own unit and knows its quality; its env only translates actions and observations.
    """

    def advance(self, *args: Any, **kwargs: Any) -> Any:
        """One step of the process under the given step parameters."""

    @property
    def cost(self) -> float:
        """The cost so far, in the process's own unit (force evaluations, NFE, System-1 calls)."""

    @property
    def done(self) -> bool:
        """Whether the process has reached its end."""

    def quality(self) -> dict[str, float]:
        """The quality metrics of the current state (e.g. ``{"energy_error": 3e-9}``)."""

    def summary(self) -> dict[str, Any]:
        """The run so far as one row: cost, quality and whatever else describes it."""
