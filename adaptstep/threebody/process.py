"""The three-body problem as a stepped process: advance by an interval under a chosen parameter.

Quality is the relative energy error |E - E0| / |E0|; cost is counted in force evaluations.
"""

import math
from dataclasses import dataclass

import numpy as np

from adaptstep.threebody.integrators import IntegrationError, Integrator, WorkLimitExceeded, make_integrator
from adaptstep.threebody.system import ThreeBodySystem


@dataclass(frozen=True)
class AdvanceResult:
    """Outcome of one ``advance``.

    Args:
        cost: The force evaluations used.
        energy_error: The relative energy error |ΔE/E0| after it.
        failure: None, ``"work_limit"`` or ``"non_finite"``.
    """

    cost: int
    energy_error: float
    failure: str | None


class ThreeBodyProcess:
    """A three-body system integrated by one backend, advanced interval by interval.

    Args:
        system: The initial conditions.
        backend: The integrator, a key of ``BACKENDS``.
        max_force_evaluations_per_advance: The work limit of one ``advance`` (an int > 0).

    Raises:
        ValueError: If ``max_force_evaluations_per_advance`` is not an int > 0 or ``backend`` is unknown.
    """

    def __init__(
        self,
        system: ThreeBodySystem,
        backend: str = "hermite",
        max_force_evaluations_per_advance: int = 2_000_000,
    ) -> None:
        limit = max_force_evaluations_per_advance
        if not (isinstance(limit, (int, np.integer)) and limit > 0):
            raise ValueError(f"max_force_evaluations_per_advance must be an int > 0, got {limit!r}")
        self.integrator: Integrator = make_integrator(backend, system)
        self.max_force_evaluations_per_advance = int(limit)
        self.initial_energy = system.energy()
        self.energy_scale = energy_scale(system)
        self.parameter_name = self.integrator.parameter_name
        self.parameter_range = self.integrator.parameter_range
        self._energy_error = 0.0

    @property
    def energy_error_trusted(self) -> bool:
        """Whether |E0| is large enough for the relative energy error to mean something.

        That is, at least ``TRUSTED_ENERGY_FRACTION`` of the energy scale K + |U| (E0 ≈ 0 makes |ΔE/E0| huge for any
        integrator).
        """
        return abs(self.initial_energy) >= TRUSTED_ENERGY_FRACTION * self.energy_scale

    @property
    def time(self) -> float:
        """The physical time reached, in N-body units."""
        return self.integrator.time

    @property
    def positions(self) -> np.ndarray:
        """Positions, shape (3, 3), in N-body units."""
        return self.integrator.positions

    @property
    def velocities(self) -> np.ndarray:
        """Velocities, shape (3, 3), in N-body units."""
        return self.integrator.velocities

    @property
    def masses(self) -> np.ndarray:
        """The three masses, in N-body units."""
        return self.integrator.masses

    def snapshot(self) -> ThreeBodySystem:
        """The current state as a system (a new process started from it continues this trajectory)."""
        return ThreeBodySystem(self.masses, self.positions, self.velocities)

    @property
    def force_evaluations(self) -> int:
        """Cumulative force evaluations, including the backend's initial one."""
        return self.integrator.force_evaluations

    @property
    def cost(self) -> int:
        """Force evaluations so far (``force_evaluations``)."""
        return self.force_evaluations

    @property
    def done(self) -> bool:
        """Never: a three-body system has no end of its own (its env stops at ``t_end``)."""
        return False

    def quality(self) -> dict[str, float]:
        """The relative energy error now."""
        return {"energy_error": self.energy_error}

    def summary(self) -> dict[str, float]:
        """Time reached, force evaluations, energy error and whether that error can be trusted (E0 not ≈ 0)."""
        return {"time": self.time, "cost": self.cost, "energy_error": self.energy_error,
                "energy_error_trusted": self.energy_error_trusted}

    @property
    def energy_error(self) -> float:
        """Relative energy error |E - E0| / |E0| of the current state (computed once per advance)."""
        return self._energy_error

    def advance(
        self, interval: float, parameter: float, *, exact: bool = True, max_force_evaluations: int | None = None
    ) -> AdvanceResult:
        """Evolve to ``time + interval`` with the time-step ``parameter`` (``advance_to``)."""
        if not (math.isfinite(interval) and interval > 0):
            raise ValueError(f"interval must be finite and > 0, got {interval}")
        return self.advance_to(self.time + interval, parameter, exact=exact,
                               max_force_evaluations=max_force_evaluations)

    def advance_to(
        self, time: float, parameter: float, *, exact: bool = True, max_force_evaluations: int | None = None
    ) -> AdvanceResult:
        """Evolve to ``time`` with the time-step ``parameter``.

        Args:
            time: The time to reach (>= the current time).
            parameter: The backend's time-step parameter.
            exact: True: land exactly on ``time``; False: stop after the first step that reaches or passes it,
                unshortened (``Integrator.evolve``).
            max_force_evaluations: The work limit of this advance (None: ``max_force_evaluations_per_advance``).

        Returns:
            The force evaluations used, the energy error after the advance and the failure, if any.

        Blow-ups do not raise: exceeding the work limit gives failure "work_limit" and a failed integration or a
        non-finite state or energy gives "non_finite". Invalid arguments raise ``ValueError``.
        """
        if not (math.isfinite(time) and time >= self.time):
            raise ValueError(f"time must be finite and >= the current time {self.time}, got {time}")
        limit = self.max_force_evaluations_per_advance if max_force_evaluations is None else max_force_evaluations
        before = self.integrator.force_evaluations
        failure = None
        try:
            self.integrator.evolve(time, parameter, limit, exact=exact)
        except WorkLimitExceeded:
            failure = "work_limit"
        except IntegrationError:
            failure = "non_finite"
        energy_error = abs(self.integrator.energy() - self.initial_energy) / abs(self.initial_energy)
        self._energy_error = energy_error
        finite = np.all(np.isfinite(self.positions)) and np.all(np.isfinite(self.velocities))
        if failure is None and not (finite and math.isfinite(energy_error)):
            failure = "non_finite"
        return AdvanceResult(self.integrator.force_evaluations - before, energy_error, failure)


TRUSTED_ENERGY_FRACTION = 1e-3  # |E0| below this fraction of K + |U| makes |ΔE/E0| overstate the error 1000-fold


def energy_scale(system: ThreeBodySystem) -> float:
    """K + |U|: the kinetic energy plus the magnitude of the potential energy, the scale that |E0| is judged by."""
    kinetic = 0.5 * float(np.sum(system.masses * np.einsum("ij,ij->i", system.velocities, system.velocities)))
    potential = 0.0
    for i in range(3):
        for j in range(i + 1, 3):
            potential += system.masses[i] * system.masses[j] / float(np.linalg.norm(system.positions[i]
                                                                                     - system.positions[j]))
    return kinetic + abs(potential)
