"""Fourth-order Hermite predictor-corrector with a shared adaptive step.

The step follows the collision-time criterion of AMUSE's hermite0 or Aarseth's criterion of the NBODY codes.
"""

import numpy as np
from numba import njit

from adaptstep.threebody.integrators.base import FAILED, REACHED, WORK_LIMIT, ArrayStateIntegrator
from adaptstep.threebody.kernels import accelerations_jerks, accelerations_jerks3
from adaptstep.threebody.system import ThreeBodySystem

COLLISION_TIME, AARSETH = 0, 1  # the step criteria of ``hermite_loop``
ETA_START = 0.01  # the starting step dt0 = ETA_START |a| / |ȧ| (the NBODY codes' small starting η)


@njit(cache=True, error_model="numpy")
def aarseth_timescale(a0: np.ndarray, j0: np.ndarray, a1: np.ndarray, j1: np.ndarray, dt: float) -> float:
    """Aarseth's time scale at the end of a Hermite step from t0 to t1 = t0 + dt.

    It is the minimum over bodies of sqrt((|a||a⁽²⁾| + |ȧ|²) / (|ȧ||a⁽³⁾| + |a⁽²⁾|²)) at t1 (Aarseth 1985;
    Makino & Aarseth 1992, PASJ 44, 141).

    The higher derivatives come from the cubic Hermite interpolation of a and ȧ at both ends (Makino & Aarseth
    1992, eqs. 8-9): a⁽³⁾ = [12 (a0 - a1) + 6 dt (ȧ0 + ȧ1)] / dt³ and
    a⁽²⁾(t1) = a⁽²⁾(t0) + dt a⁽³⁾ = [6 (a0 - a1) + dt (2 ȧ0 + 4 ȧ1)] / dt².

    Args:
        a0: Accelerations at t0, shape (3, 3).
        j0: Jerks at t0, shape (3, 3).
        a1: Accelerations at t1, shape (3, 3).
        j1: Jerks at t1, shape (3, 3).
        dt: The step length t1 - t0, in N-body units.
    """
    tau2 = np.inf
    for i in range(a1.shape[0]):
        a_2 = j_2 = snap_2 = crackle_2 = 0.0
        for k in range(3):
            da = a0[i, k] - a1[i, k]
            snap = (6.0 * da + dt * (2.0 * j0[i, k] + 4.0 * j1[i, k])) / (dt * dt)
            crackle = (12.0 * da + 6.0 * dt * (j0[i, k] + j1[i, k])) / (dt * dt * dt)
            a_2 += a1[i, k] ** 2
            j_2 += j1[i, k] ** 2
            snap_2 += snap * snap
            crackle_2 += crackle * crackle
        tau2 = min(tau2, (np.sqrt(a_2 * snap_2) + j_2) / (np.sqrt(j_2 * crackle_2) + snap_2))
    return np.sqrt(tau2)


@njit(cache=True, error_model="numpy")
def starting_timescale(a: np.ndarray, j: np.ndarray) -> float:
    """The minimum over bodies of |a| / |ȧ|, the scale of the NBODY codes' starting step."""
    scale = np.inf
    for i in range(a.shape[0]):
        scale = min(scale, np.sqrt((a[i, 0] ** 2 + a[i, 1] ** 2 + a[i, 2] ** 2)
                                   / (j[i, 0] ** 2 + j[i, 1] ** 2 + j[i, 2] ** 2)))
    return scale


@njit(cache=True, error_model="numpy")
def hermite_loop(
    masses: np.ndarray,
    x: np.ndarray,
    v: np.ndarray,
    a: np.ndarray,
    j: np.ndarray,
    t: float,
    tau: float,
    t_end: float,
    eta: float,
    max_evaluations: int,
    exact: bool = True,
    criterion: int = COLLISION_TIME,
) -> tuple[float, float, int, int]:
    """Advance (x, v, a, j) in place from t to t_end.

    Each step: dt = eta * tau; predict x_p = x + v dt + a dt^2/2 + j dt^3/6, v_p = v + a dt + j dt^2/2; evaluate
    a_1, j_1 at the predicted state (one force evaluation); correct with the time-symmetric form of Hut & Makino
    (as in hermite0):
    v_1 = v + (a + a_1) dt/2 + (j - j_1) dt^2/12,  x_1 = x + (v + v_1) dt/2 + (a - a_1) dt^2/12.

    Args:
        masses: The three masses.
        x: Positions, shape (3, 3), updated in place.
        v: Velocities, shape (3, 3), updated in place.
        a: Accelerations, shape (3, 3), updated in place.
        j: Jerks, shape (3, 3), updated in place.
        t: The start time.
        tau: The time scale of the next step; a negative tau holds minus the length of the first step
            (Aarseth's starting step).
        t_end: The time to reach.
        eta: The time-step parameter η.
        max_evaluations: The force evaluations allowed.
        exact: Whether the last step is shortened to land on t_end; without it the loop stops after the first
            step that reaches or passes t_end.
        criterion: The time scale for the next step: ``COLLISION_TIME``, the collision time at the predicted
            state (``accelerations_jerks``); ``AARSETH``, ``aarseth_timescale`` of the step.

    Returns:
        The time reached, the next step's time scale, the force evaluations used and the status (``REACHED``,
        ``FAILED`` or ``WORK_LIMIT``).
    """
    x0 = np.empty_like(x)
    v0 = np.empty_like(v)
    a0 = np.empty_like(a)
    j0 = np.empty_like(j)
    evaluations = 0
    while t < t_end:
        dt = eta * tau if tau > 0.0 else -tau
        last = t + dt >= t_end
        if last and exact:
            dt = t_end - t
        elif not (0.0 < dt < np.inf) or t + dt == t:
            return t, tau, evaluations, FAILED
        if evaluations >= max_evaluations:
            return t, tau, evaluations, WORK_LIMIT
        for i in range(x.shape[0]):
            for k in range(3):
                x0[i, k], v0[i, k], a0[i, k], j0[i, k] = x[i, k], v[i, k], a[i, k], j[i, k]
                x[i, k] += dt * (v[i, k] + dt * (a[i, k] / 2.0 + dt * j[i, k] / 6.0))
                v[i, k] += dt * (a[i, k] + dt * j[i, k] / 2.0)
        tau = accelerations_jerks3(masses, x, v, a, j)
        evaluations += 1
        for i in range(x.shape[0]):
            for k in range(3):
                v[i, k] = v0[i, k] + dt * (a0[i, k] + a[i, k]) / 2.0 + dt * dt * (j0[i, k] - j[i, k]) / 12.0
                x[i, k] = x0[i, k] + dt * (v0[i, k] + v[i, k]) / 2.0 + dt * dt * (a0[i, k] - a[i, k]) / 12.0
        if criterion == AARSETH:
            tau = aarseth_timescale(a0, j0, a, j, dt)
        t = t_end if last and exact else t + dt
    return t, tau, evaluations, REACHED


class HermiteIntegrator(ArrayStateIntegrator):
    """Hermite PEC scheme (Makino & Aarseth 1992) with the reference code's shared adaptive step.

    The step is dt = eta * tau_coll, tau_coll = min_pairs min(r/v, sqrt(r^3/(m_i+m_j))) recomputed at every force
    evaluation. One force evaluation (acceleration + jerk) per step, plus one at construction for the initial
    acceleration and jerk.

    Args:
        system: The initial conditions.
    """

    name = "hermite"
    parameter_name = "eta"
    parameter_range = (1e-4, 1e-1)
    criterion = COLLISION_TIME

    def __init__(self, system: ThreeBodySystem) -> None:
        super().__init__(system)
        self._tau = accelerations_jerks(self.masses, self._x, self._v, self._a, self._j)
        self.force_evaluations = 1

    def _evolve(self, t_end: float, parameter: float, max_force_evaluations: int, exact: bool) -> tuple[int, int]:
        state = (self.masses, self._x, self._v, self._a, self._j, self._t, self._tau)
        self._t, self._tau, used, status = hermite_loop(
            *state, t_end, parameter, max_force_evaluations, exact, self.criterion
        )
        return used, status


class AarsethHermiteIntegrator(HermiteIntegrator):
    """The Hermite scheme with Aarseth's criterion, the standard of N-body Hermite codes.

    The step is dt = eta * sqrt((|a||a⁽²⁾| + |ȧ|²) / (|ȧ||a⁽³⁾| + |a⁽²⁾|²)), minimum over bodies, from the
    corrector's derivatives (``aarseth_timescale``). The first step is the NBODY codes' ETA_START * min |a| / |ȧ|,
    bounded by ETA_START * tau_coll so that it stays finite when the bodies start at rest (ȧ = 0, the Pythagorean
    problem). Typical eta: 0.01-0.03.

    Args:
        system: The initial conditions.
    """

    name = "hermite-aarseth"
    criterion = AARSETH

    def __init__(self, system: ThreeBodySystem) -> None:
        super().__init__(system)
        start = min(starting_timescale(self._a, self._j), self._tau)  # self._tau: the collision time
        self._tau = -ETA_START * start  # < 0: the starting step, not a time scale
