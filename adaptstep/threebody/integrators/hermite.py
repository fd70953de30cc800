"""Fourth-order Hermite predictor-corrector with a shared, collision-time step (AMUSE hermite0)."""

import numpy as np
from numba import njit

from adaptstep.threebody.integrators.base import FAILED, REACHED, WORK_LIMIT, ArrayStateIntegrator
from adaptstep.threebody.kernels import accelerations_jerks
from adaptstep.threebody.system import ThreeBodySystem


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
) -> tuple[float, float, int, int]:
    """Advance (x, v, a, j) in place from t to t_end; return (t, tau_coll, evaluations, status).

    Each step: dt = eta * tau_coll (shortened to land on t_end); predict
    x_p = x + v dt + a dt^2/2 + j dt^3/6, v_p = v + a dt + j dt^2/2; evaluate a_1, j_1 and
    tau_coll at the predicted state (one force evaluation); correct with the time-symmetric
    form of Hut & Makino (as in hermite0):
    v_1 = v + (a + a_1) dt/2 + (j - j_1) dt^2/12,  x_1 = x + (v + v_1) dt/2 + (a - a_1) dt^2/12.
    """
    x0 = np.empty_like(x)
    v0 = np.empty_like(v)
    a0 = np.empty_like(a)
    j0 = np.empty_like(j)
    evaluations = 0
    while t < t_end:
        dt = eta * tau
        last = t + dt >= t_end
        if last:
            dt = t_end - t
        elif not dt > 0.0 or t + dt == t:
            return t, tau, evaluations, FAILED
        if evaluations >= max_evaluations:
            return t, tau, evaluations, WORK_LIMIT
        for i in range(x.shape[0]):
            for k in range(3):
                x0[i, k], v0[i, k], a0[i, k], j0[i, k] = x[i, k], v[i, k], a[i, k], j[i, k]
                x[i, k] += dt * (v[i, k] + dt * (a[i, k] / 2.0 + dt * j[i, k] / 6.0))
                v[i, k] += dt * (a[i, k] + dt * j[i, k] / 2.0)
        tau = accelerations_jerks(masses, x, v, a, j)
        evaluations += 1
        for i in range(x.shape[0]):
            for k in range(3):
                v[i, k] = v0[i, k] + dt * (a0[i, k] + a[i, k]) / 2.0 + dt * dt * (j0[i, k] - j[i, k]) / 12.0
                x[i, k] = x0[i, k] + dt * (v0[i, k] + v[i, k]) / 2.0 + dt * dt * (a0[i, k] - a[i, k]) / 12.0
        t = t_end if last else t + dt
    return t, tau, evaluations, REACHED


class HermiteIntegrator(ArrayStateIntegrator):
    """Hermite PEC scheme (Makino & Aarseth 1992) with the shared adaptive step
    dt = eta * tau_coll of the reference code, tau_coll = min_pairs min(r/v, sqrt(r^3/(m_i+m_j)))
    recomputed at every force evaluation. One force evaluation (acceleration + jerk) per
    step, plus one at construction for the initial acceleration and jerk.
    """

    name = "hermite"
    parameter_name = "eta"
    parameter_range = (1e-4, 1e-1)

    def __init__(self, system: ThreeBodySystem) -> None:
        super().__init__(system)
        self._a = np.empty((3, 3))
        self._j = np.empty((3, 3))
        self._tau = accelerations_jerks(self.masses, self._x, self._v, self._a, self._j)
        self.force_evaluations = 1

    def _evolve(self, t_end: float, parameter: float, max_force_evaluations: int) -> tuple[int, int]:
        state = (self.masses, self._x, self._v, self._a, self._j, self._t, self._tau)
        self._t, self._tau, used, status = hermite_loop(*state, t_end, parameter, max_force_evaluations)
        return used, status
