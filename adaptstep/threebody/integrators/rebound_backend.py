"""REBOUND 5.x backends (IAS15 and Gragg-Bulirsch-Stoer) with force-evaluation counting.

REBOUND has no force counter, so a no-op ``sim.additional_forces`` callback counts the
calls of its acceleration update (one per full force evaluation). Observed with
REBOUND 5.2.2, IAS15: a step costs 1 + 7 k evaluations, one at the start of the step plus
7 substeps per predictor-corrector iteration (rejected tries add 7 k' within the same
step). Pythagorean problem, epsilon = 1e-9, t = 0..10: 584 steps of 22 (k = 3), 30 of 29,
one of 15 (the first step), mean 22.3; so (evaluations - steps_done) is a multiple of 7,
except when the 12-iteration cap is hit (``iterations_max_exceeded``, large epsilon).
BS costs ~50-80 evaluations per step.

Work limit: once the budget is used up the callback calls ``sim.stop()``. REBOUND only
checks it between steps, so the step in progress completes (the limit can be overshot by
part of one step) and ``integrate`` returns silently at that step with status
``REB_STATUS_USER``; the next ``integrate`` call clears it. After a stop REBOUND restores
``sim.dt`` to its value at the start of the ``integrate`` call, so a continuation re-grows
the step (a few extra steps) instead of resuming the adapted one.

Interval ends (REBOUND 5.2.2, checked here): ``sim.integrate(t, exact_finish_time=1)`` shortens the last step to
land on t and afterwards sets ``sim.dt`` back to the last full step taken inside the call; on the reference
three-body problem IAS15's natural steps at epsilon = 1e-5 grow to ~10 units, so chopping at every 0.1 yr
(1.09 units) this way keeps the step below the interval (about 3x the force evaluations of one call).
``exact_finish_time=0`` (``evolve(..., exact=False)``) instead stops after the first step that passes t, leaves
``sim.dt`` as IAS15 proposed it for the next step, and a sequence of such calls takes exactly the steps of one
call.
"""

from abc import abstractmethod
from typing import ClassVar

import numpy as np
import rebound

from adaptstep.threebody.integrators.base import FAILED, REACHED, UNLIMITED, WORK_LIMIT, Integrator
from adaptstep.threebody.system import ThreeBodySystem


class ReboundIntegrator(Integrator):
    """A REBOUND simulation (G = 1) holding the state between ``evolve`` calls.

    Each call runs ``sim.integrate(t_end, exact_finish_time=1)``, or ``exact_finish_time=0`` with ``exact=False``.

    Args:
        system: The initial conditions.
        count_force_evaluations: Whether to install the counting callback. Without it (for timing)
            ``force_evaluations`` stays 0 and no work limit can be applied.
    """

    rebound_integrator: ClassVar[str]

    def __init__(self, system: ThreeBodySystem, count_force_evaluations: bool = True) -> None:
        super().__init__(system)
        self.sim = rebound.Simulation()
        self.sim.G = 1.0
        self.sim.integrator = self.rebound_integrator
        for m, x, v in zip(system.masses, system.positions, system.velocities):
            self.sim.add(m=m, x=x[0], y=x[1], z=x[2], vx=v[0], vy=v[1], vz=v[2])
        self._counting = count_force_evaluations
        self._calls = 0
        self._budget = UNLIMITED
        if count_force_evaluations:
            self.sim.additional_forces = self._count

    def _count(self, _simulation: object) -> None:
        self._calls += 1
        if self._calls >= self._budget:
            self.sim.stop()

    @property
    def time(self) -> float:
        """The physical time reached, in N-body units."""
        return self.sim.t

    @property
    def positions(self) -> np.ndarray:
        """Positions, shape (3, 3), in N-body units."""
        out = np.empty((3, 3))
        self.sim.serialize_particle_data(xyz=out)
        return out

    @property
    def velocities(self) -> np.ndarray:
        """Velocities, shape (3, 3), in N-body units."""
        out = np.empty((3, 3))
        self.sim.serialize_particle_data(vxvyvz=out)
        return out

    @property
    def steps_done(self) -> int:
        """Steps completed by REBOUND (rejected IAS15 tries are not counted separately)."""
        return self.sim.steps_done

    @abstractmethod
    def _set_parameter(self, parameter: float) -> None:
        """Set the backend's accuracy parameter on ``self.sim``."""

    def _evolve(self, t_end: float, parameter: float, max_force_evaluations: int, exact: bool) -> tuple[int, int]:
        if not self._counting and max_force_evaluations != UNLIMITED:
            raise ValueError("max_force_evaluations needs count_force_evaluations=True")
        self._set_parameter(parameter)
        self._calls, self._budget = 0, max_force_evaluations
        try:
            self.sim.integrate(t_end, exact_finish_time=int(exact))
        except (RuntimeError, rebound.GenericError):  # e.g. BS: "NaN appearing during ODE integration"
            return self._calls, FAILED
        if self.sim.t == t_end or (not exact and self.sim.t >= t_end):
            return self._calls, REACHED
        return self._calls, WORK_LIMIT if self._calls >= max_force_evaluations else FAILED


class IAS15Integrator(ReboundIntegrator):
    """IAS15 (Rein & Spiegel 2015), 15th order, with the PRS23 adaptive step (Pham, Rein & Spiegel 2024).

    dt ∝ epsilon^(1/7); ``parameter`` is ``sim.integrator.epsilon``. Constructor arguments as ``ReboundIntegrator``.
    """

    name = "rebound-ias15"
    parameter_name = "epsilon"
    parameter_range = (1e-10, 1e-3)
    rebound_integrator = "ias15"

    def _set_parameter(self, parameter: float) -> None:
        self.sim.integrator.epsilon = parameter


class BSIntegrator(ReboundIntegrator):
    """Gragg-Bulirsch-Stoer with adaptive step and order.

    ``parameter`` sets both ``eps_abs`` and ``eps_rel`` (per-coordinate tolerance eps_abs + eps_rel |y|).
    Constructor arguments as ``ReboundIntegrator``.
    """

    name = "rebound-bs"
    parameter_name = "epsilon"
    parameter_range = (1e-12, 1e-3)
    rebound_integrator = "bs"

    def _set_parameter(self, parameter: float) -> None:
        self.sim.integrator.eps_abs = parameter
        self.sim.integrator.eps_rel = parameter
