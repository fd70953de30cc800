"""Second-order kick-drift-kick leapfrog with a fixed step."""

import math

import numpy as np
from numba import njit

from adaptstep.threebody.integrators.base import REACHED, WORK_LIMIT, ArrayStateIntegrator
from adaptstep.threebody.kernels import accelerations, accelerations3
from adaptstep.threebody.system import ThreeBodySystem


@njit(cache=True, error_model="numpy")
def leapfrog_loop(
    masses: np.ndarray,
    x: np.ndarray,
    v: np.ndarray,
    a: np.ndarray,
    t: float,
    dt: float,
    n_steps: int,
    t_final: float,
) -> float:
    """Advance (x, v, a) in place by ``n_steps`` KDK steps: v += a h/2; x += v h; a = a(x); v += a h/2.

    Args:
        masses: The three masses.
        x: Positions, shape (3, 3), updated in place.
        v: Velocities, shape (3, 3), updated in place.
        a: Accelerations, shape (3, 3), updated in place.
        t: The start time.
        dt: The step h, except for a last step that ends at a finite ``t_final``.
        n_steps: The number of steps (one force evaluation each).
        t_final: The time the last step ends at exactly; ``inf`` for none.

    Returns:
        The new time; t + n_steps dt without a finite ``t_final``.
    """
    t_start = t
    for step in range(n_steps):
        last = step == n_steps - 1 and math.isfinite(t_final)
        h = t_final - t if last else dt
        for i in range(x.shape[0]):
            for k in range(3):
                v[i, k] += 0.5 * h * a[i, k]
                x[i, k] += h * v[i, k]
        accelerations3(masses, x, a)
        for i in range(x.shape[0]):
            for k in range(3):
                v[i, k] += 0.5 * h * a[i, k]
        t = t_final if last else t_start + (step + 1) * dt
    return t


@njit(cache=True, error_model="numpy")
def leapfrog_advance(
    masses: np.ndarray,
    x: np.ndarray,
    v: np.ndarray,
    a: np.ndarray,
    t: float,
    t_end: float,
    dt: float,
    max_evaluations: int,
    exact: bool,
) -> tuple[float, int, int]:
    """Advance (x, v, a) in place from t to ``t_end`` with the fixed step ``dt`` (``leapfrog_loop``).

    ``exact``: the last step is shortened to end on t_end; otherwise the fewest full steps whose end, t + n dt as
    the loop computes it, reaches t_end.

    Returns:
        The time reached, the force evaluations used and the status (``REACHED`` or ``WORK_LIMIT``).
    """
    span = (t_end - t) / dt - 1e-9  # steps needed, tolerant to round-off in t_end/dt
    if span > max_evaluations:
        needed = max_evaluations + 1
    elif exact:
        needed = max(math.ceil(span), 1) if t_end > t else 0
    else:
        needed = max(math.ceil((t_end - t) / dt), 0)
        while needed > 0 and t + (needed - 1) * dt >= t_end:
            needed -= 1
        while t + needed * dt < t_end:
            needed += 1
    used = min(needed, max_evaluations)
    t_final = t_end if used == needed and exact else math.inf
    t = leapfrog_loop(masses, x, v, a, t, dt, used, t_final)
    return t, used, REACHED if used == needed else WORK_LIMIT


class LeapfrogIntegrator(ArrayStateIntegrator):
    """Kick-drift-kick leapfrog (symplectic, time-reversible, energy error O(dt^2)) with the fixed step dt = parameter.

    The acceleration at the end of a step is reused at the start of the next, so each step costs one force
    evaluation (plus one at construction).

    Args:
        system: The initial conditions.
    """

    name = "leapfrog"
    parameter_name = "dt"
    parameter_range = (1e-5, 1e-1)

    def __init__(self, system: ThreeBodySystem) -> None:
        super().__init__(system)
        accelerations(self.masses, self._x, self._a)
        self.force_evaluations = 1

    def _evolve(self, t_end: float, parameter: float, max_force_evaluations: int, exact: bool) -> tuple[int, int]:
        self._t, used, status = leapfrog_advance(self.masses, self._x, self._v, self._a, self._t, t_end, parameter,
                                                 max_force_evaluations, exact)
        return used, status
