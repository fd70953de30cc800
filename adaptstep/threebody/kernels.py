"""Numba kernels for direct-summation Newtonian gravity (G = 1, no softening).

Arrays are ``masses (n,)``, ``positions (n, 3)``, ``velocities (n, 3)``; every
pair is visited once and its contribution added to both bodies with opposite
sign (Newton's third law), so momentum is conserved to round-off. The numpy
error model lets a singular configuration produce inf/nan instead of raising.
"""

import numpy as np
from numba import njit


@njit(cache=True, error_model="numpy")
def accelerations(masses: np.ndarray, positions: np.ndarray, acc: np.ndarray) -> None:
    """Write a_i = sum_j m_j (x_j - x_i) / |x_j - x_i|^3 into ``acc``."""
    n = masses.shape[0]
    acc[:] = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            dx = positions[j, 0] - positions[i, 0]
            dy = positions[j, 1] - positions[i, 1]
            dz = positions[j, 2] - positions[i, 2]
            r2 = dx * dx + dy * dy + dz * dz
            inv_r3 = 1.0 / (r2 * np.sqrt(r2))
            acc[i, 0] += masses[j] * dx * inv_r3
            acc[i, 1] += masses[j] * dy * inv_r3
            acc[i, 2] += masses[j] * dz * inv_r3
            acc[j, 0] -= masses[i] * dx * inv_r3
            acc[j, 1] -= masses[i] * dy * inv_r3
            acc[j, 2] -= masses[i] * dz * inv_r3


@njit(cache=True, error_model="numpy")
def accelerations_jerks(
    masses: np.ndarray,
    positions: np.ndarray,
    velocities: np.ndarray,
    acc: np.ndarray,
    jerk: np.ndarray,
) -> float:
    """Write accelerations and jerks into ``acc``/``jerk``; return the collision time.

    Jerk: j_i = sum_j m_j [v_ji / r^3 - 3 (r_ji . v_ji) r_ji / r^5].
    Collision time (Hut & Makino, "Moving Stars Around"; AMUSE hermite0):
    tau_coll = min over pairs of min(r / v, sqrt(r^3 / (m_i + m_j))).

    Args:
        masses: Shape (n,).
        positions: Shape (n, 3).
        velocities: Shape (n, 3).
        acc: Shape (n, 3), overwritten with the accelerations.
        jerk: Shape (n, 3), overwritten with the jerks.
    """
    n = masses.shape[0]
    acc[:] = 0.0
    jerk[:] = 0.0
    tau4 = np.inf  # collision time to the fourth power, as in hermite0
    for i in range(n):
        for j in range(i + 1, n):
            dx = positions[j, 0] - positions[i, 0]
            dy = positions[j, 1] - positions[i, 1]
            dz = positions[j, 2] - positions[i, 2]
            dvx = velocities[j, 0] - velocities[i, 0]
            dvy = velocities[j, 1] - velocities[i, 1]
            dvz = velocities[j, 2] - velocities[i, 2]
            r2 = dx * dx + dy * dy + dz * dz
            v2 = dvx * dvx + dvy * dvy + dvz * dvz
            inv_r3 = 1.0 / (r2 * np.sqrt(r2))
            rv3 = 3.0 * (dx * dvx + dy * dvy + dz * dvz) / r2
            ax, ay, az = dx * inv_r3, dy * inv_r3, dz * inv_r3
            jx = (dvx - rv3 * dx) * inv_r3
            jy = (dvy - rv3 * dy) * inv_r3
            jz = (dvz - rv3 * dz) * inv_r3
            acc[i, 0] += masses[j] * ax
            acc[i, 1] += masses[j] * ay
            acc[i, 2] += masses[j] * az
            acc[j, 0] -= masses[i] * ax
            acc[j, 1] -= masses[i] * ay
            acc[j, 2] -= masses[i] * az
            jerk[i, 0] += masses[j] * jx
            jerk[i, 1] += masses[j] * jy
            jerk[i, 2] += masses[j] * jz
            jerk[j, 0] -= masses[i] * jx
            jerk[j, 1] -= masses[i] * jy
            jerk[j, 2] -= masses[i] * jz
            m_pair = masses[i] + masses[j]
            tau4 = min(tau4, (r2 * r2) / (v2 * v2), r2 * r2 * r2 / (m_pair * m_pair))
    return np.sqrt(np.sqrt(tau4))


@njit(cache=True, error_model="numpy")
def potential_energy(masses: np.ndarray, positions: np.ndarray) -> float:
    """U = -sum_{i<j} m_i m_j / |x_i - x_j|."""
    n = masses.shape[0]
    u = 0.0
    for i in range(n):
        for j in range(i + 1, n):
            dx = positions[j, 0] - positions[i, 0]
            dy = positions[j, 1] - positions[i, 1]
            dz = positions[j, 2] - positions[i, 2]
            u -= masses[i] * masses[j] / np.sqrt(dx * dx + dy * dy + dz * dz)
    return u


@njit(cache=True, error_model="numpy")
def total_energy(masses: np.ndarray, positions: np.ndarray, velocities: np.ndarray) -> float:
    """E = sum_i m_i |v_i|^2 / 2 + U."""
    kinetic = 0.0
    for i in range(masses.shape[0]):
        v2 = velocities[i, 0] ** 2 + velocities[i, 1] ** 2 + velocities[i, 2] ** 2
        kinetic += 0.5 * masses[i] * v2
    return kinetic + potential_energy(masses, positions)
