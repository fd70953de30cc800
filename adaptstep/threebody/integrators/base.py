"""The common interface of all three-body integrators."""

import math
from abc import ABC, abstractmethod
from typing import ClassVar

import numpy as np

from adaptstep.threebody.kernels import total_energy
from adaptstep.threebody.system import ThreeBodySystem

# Status codes returned by the backends' inner loops (plain ints so Numba can use them).
REACHED, WORK_LIMIT, FAILED = 0, 1, 2
UNLIMITED = 2**62  # the force-evaluation budget used when no limit is given


class IntegrationError(RuntimeError):
    """The integration could not continue (non-finite state, or a step that is not > 0 or below round-off)."""


class WorkLimitExceeded(IntegrationError):
    """Reaching ``t_end`` would exceed ``max_force_evaluations``; the state is the last completed step."""


class Integrator(ABC):
    """An N-body integrator that advances a system to given times under a time-step parameter.

    ``evolve(t_end, ..., exact=True)`` shortens the last step to land on ``t_end``; ``exact=False`` lets the last
    step pass ``t_end`` unshortened, as AMUSE's ``evolve_model`` does, so a sequence of calls takes the same steps
    as one call (the integrator keeps its adapted step across calls).

    Cost is counted in force evaluations (one evaluation of all pairwise accelerations,
    with or without jerks); ``force_evaluations`` is cumulative and includes any
    evaluation made at construction.
    """

    name: ClassVar[str]
    parameter_name: ClassVar[str]
    parameter_range: ClassVar[tuple[float, float]]

    force_evaluations: int

    def __init__(self, system: ThreeBodySystem) -> None:
        self.masses = system.masses
        self.force_evaluations = 0

    @property
    @abstractmethod
    def time(self) -> float:
        """Current simulation time."""

    @property
    @abstractmethod
    def positions(self) -> np.ndarray:
        """Copy of the current positions, shape (3, 3)."""

    @property
    @abstractmethod
    def velocities(self) -> np.ndarray:
        """Copy of the current velocities, shape (3, 3)."""

    @abstractmethod
    def _evolve(self, t_end: float, parameter: float, max_force_evaluations: int, exact: bool) -> tuple[int, int]:
        """Advance to ``t_end`` (``exact``) or past it; return (force evaluations used, status code)."""

    def evolve(
        self, t_end: float, parameter: float, max_force_evaluations: int | None = None, exact: bool = True
    ) -> int:
        """Integrate to ``t_end``.

        Args:
            t_end: The time to reach (>= the current time, or any finite time with ``exact=False``: a time
                already passed takes no step).
            parameter: The backend's time-step parameter (``parameter_name``).
            max_force_evaluations: The most force evaluations this call may use (None: no limit).
            exact: True: shorten the last step to land exactly on ``t_end``. False: stop after the first step
                that reaches or passes ``t_end``, unshortened; the time reached is then >= ``t_end``.

        Returns:
            The force evaluations used by this call.

        Raises:
            WorkLimitExceeded: Reaching ``t_end`` needs more than ``max_force_evaluations``.
            IntegrationError: The integration failed. Either way the state is the last completed step and
                ``force_evaluations`` includes the work done.
        """
        if not (math.isfinite(parameter) and parameter > 0):
            raise ValueError(f"parameter ({self.parameter_name}) must be finite and > 0, got {parameter}")
        if not (math.isfinite(t_end) and (t_end >= self.time or not exact)):
            raise ValueError(f"t_end must be finite and >= the current time {self.time}, got {t_end}")
        if max_force_evaluations is not None and not (
            isinstance(max_force_evaluations, (int, np.integer)) and max_force_evaluations >= 0
        ):
            raise ValueError(f"max_force_evaluations must be an int >= 0 or None, got {max_force_evaluations!r}")
        if t_end <= self.time:  # already there (or, with exact=False, past it)
            return 0
        limit = UNLIMITED if max_force_evaluations is None else int(max_force_evaluations)
        used, status = self._evolve(float(t_end), float(parameter), limit, bool(exact))
        self.force_evaluations += used
        if status == WORK_LIMIT:
            raise WorkLimitExceeded(
                f"{self.name}: {used} force evaluations (limit {max_force_evaluations}) reached t = {self.time}, "
                f"short of t_end = {t_end}"
            )
        if status == FAILED:
            raise IntegrationError(
                f"{self.name}: integration failed (non-finite state or degenerate step) at t = {self.time}, "
                f"short of t_end = {t_end}"
            )
        return used

    def energy(self) -> float:
        """Total energy of the current state (same kernel for every backend)."""
        return float(total_energy(self.masses, self.positions, self.velocities))


class ArrayStateIntegrator(Integrator):
    """Base of the Numba backends: time, positions and velocities held in NumPy arrays advanced in place.

    ``_state`` (4, 3, 3) holds positions, velocities and the backend's acceleration and jerk (leapfrog: no jerk);
    ``_x``, ``_v``, ``_a`` and ``_j`` are views of its rows, so the fused env step takes the state as one array.
    """

    def __init__(self, system: ThreeBodySystem) -> None:
        super().__init__(system)
        self._t = 0.0
        self._state = np.zeros((4, 3, 3))
        self._x, self._v, self._a, self._j = self._state
        self._x[:], self._v[:] = system.positions, system.velocities

    @property
    def time(self) -> float:
        """The physical time reached, in N-body units."""
        return self._t

    @property
    def positions(self) -> np.ndarray:
        """Positions, shape (3, 3), in N-body units."""
        return self._x.copy()

    @property
    def velocities(self) -> np.ndarray:
        """Velocities, shape (3, 3), in N-body units."""
        return self._v.copy()
