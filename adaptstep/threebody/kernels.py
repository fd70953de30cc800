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


@njit(cache=True, error_model="numpy", inline="always")
def _pair(
    masses: np.ndarray, positions: np.ndarray, velocities: np.ndarray, i: int, k: int
) -> tuple[float, float, float, float, float, float, float, float]:
    """One pair's a and ȧ per unit mass and the two terms of its collision time^4 (``accelerations_jerks``)."""
    dx = positions[k, 0] - positions[i, 0]
    dy = positions[k, 1] - positions[i, 1]
    dz = positions[k, 2] - positions[i, 2]
    dvx = velocities[k, 0] - velocities[i, 0]
    dvy = velocities[k, 1] - velocities[i, 1]
    dvz = velocities[k, 2] - velocities[i, 2]
    r2 = dx * dx + dy * dy + dz * dz
    v2 = dvx * dvx + dvy * dvy + dvz * dvz
    inv_r3 = 1.0 / (r2 * np.sqrt(r2))
    rv3 = 3.0 * (dx * dvx + dy * dvy + dz * dvz) / r2
    m_pair = masses[i] + masses[k]
    return (dx * inv_r3, dy * inv_r3, dz * inv_r3, (dvx - rv3 * dx) * inv_r3, (dvy - rv3 * dy) * inv_r3,
            (dvz - rv3 * dz) * inv_r3, (r2 * r2) / (v2 * v2), r2 * r2 * r2 / (m_pair * m_pair))


@njit(cache=True, error_model="numpy")
def accelerations_jerks3(
    masses: np.ndarray,
    positions: np.ndarray,
    velocities: np.ndarray,
    acc: np.ndarray,
    jerk: np.ndarray,
) -> float:
    """``accelerations_jerks`` for three bodies with the pair loop unrolled, bit-identical to it.

    The sums run in the same order, held in registers instead of the output arrays (each starts at +0.0 as the
    zeroed array does, so the signs of zeros match too).
    """
    m0, m1, m2 = masses[0], masses[1], masses[2]
    ax01, ay01, az01, jx01, jy01, jz01, s01, f01 = _pair(masses, positions, velocities, 0, 1)
    ax02, ay02, az02, jx02, jy02, jz02, s02, f02 = _pair(masses, positions, velocities, 0, 2)
    ax12, ay12, az12, jx12, jy12, jz12, s12, f12 = _pair(masses, positions, velocities, 1, 2)
    acc[0, 0] = 0.0 + m1 * ax01 + m2 * ax02
    acc[0, 1] = 0.0 + m1 * ay01 + m2 * ay02
    acc[0, 2] = 0.0 + m1 * az01 + m2 * az02
    acc[1, 0] = 0.0 - m0 * ax01 + m2 * ax12
    acc[1, 1] = 0.0 - m0 * ay01 + m2 * ay12
    acc[1, 2] = 0.0 - m0 * az01 + m2 * az12
    acc[2, 0] = 0.0 - m0 * ax02 - m1 * ax12
    acc[2, 1] = 0.0 - m0 * ay02 - m1 * ay12
    acc[2, 2] = 0.0 - m0 * az02 - m1 * az12
    jerk[0, 0] = 0.0 + m1 * jx01 + m2 * jx02
    jerk[0, 1] = 0.0 + m1 * jy01 + m2 * jy02
    jerk[0, 2] = 0.0 + m1 * jz01 + m2 * jz02
    jerk[1, 0] = 0.0 - m0 * jx01 + m2 * jx12
    jerk[1, 1] = 0.0 - m0 * jy01 + m2 * jy12
    jerk[1, 2] = 0.0 - m0 * jz01 + m2 * jz12
    jerk[2, 0] = 0.0 - m0 * jx02 - m1 * jx12
    jerk[2, 1] = 0.0 - m0 * jy02 - m1 * jy12
    jerk[2, 2] = 0.0 - m0 * jz02 - m1 * jz12
    tau4 = min(np.inf, s01, f01)  # the loop's order, so that a nan term is skipped as there
    tau4 = min(tau4, s02, f02)
    tau4 = min(tau4, s12, f12)
    return np.sqrt(np.sqrt(tau4))


@njit(cache=True, error_model="numpy", inline="always")
def _separation(positions: np.ndarray, i: int, k: int) -> tuple[float, float, float, float]:
    """x_k - x_i and 1 / |x_k - x_i|^3 (the body of ``accelerations``'s pair loop)."""
    dx = positions[k, 0] - positions[i, 0]
    dy = positions[k, 1] - positions[i, 1]
    dz = positions[k, 2] - positions[i, 2]
    r2 = dx * dx + dy * dy + dz * dz
    return dx, dy, dz, 1.0 / (r2 * np.sqrt(r2))


@njit(cache=True, error_model="numpy")
def accelerations3(masses: np.ndarray, positions: np.ndarray, acc: np.ndarray) -> None:
    """``accelerations`` for three bodies with the pair loop unrolled, bit-identical to it (same sums, same order).

    Each term is (m_j dx) / r^3 as the loop multiplies, ``masses[j] * dx * inv_r3``.
    """
    m0, m1, m2 = masses[0], masses[1], masses[2]
    dx01, dy01, dz01, q01 = _separation(positions, 0, 1)
    dx02, dy02, dz02, q02 = _separation(positions, 0, 2)
    dx12, dy12, dz12, q12 = _separation(positions, 1, 2)
    acc[0, 0] = 0.0 + m1 * dx01 * q01 + m2 * dx02 * q02
    acc[0, 1] = 0.0 + m1 * dy01 * q01 + m2 * dy02 * q02
    acc[0, 2] = 0.0 + m1 * dz01 * q01 + m2 * dz02 * q02
    acc[1, 0] = 0.0 - m0 * dx01 * q01 + m2 * dx12 * q12
    acc[1, 1] = 0.0 - m0 * dy01 * q01 + m2 * dy12 * q12
    acc[1, 2] = 0.0 - m0 * dz01 * q01 + m2 * dz12 * q12
    acc[2, 0] = 0.0 - m0 * dx02 * q02 - m1 * dx12 * q12
    acc[2, 1] = 0.0 - m0 * dy02 * q02 - m1 * dy12 * q12
    acc[2, 2] = 0.0 - m0 * dz02 * q02 - m1 * dz12 * q12
