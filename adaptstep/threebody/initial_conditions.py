"""Initial conditions: the reference paper's random triples and the Pythagorean problem."""

import numpy as np

from adaptstep.threebody.system import ThreeBodySystem

# N-body units of the reference code: G = 1, M_unit = 3 M_sun, L_unit = 1 au.
# T_unit = sqrt(L_unit^3 / (G M_unit)). With G M_sun = 4 pi^2 au^3 / yr^2 (Kepler's third
# law; the Gaussian year, 365.2569 d) T_unit = yr / (2 pi sqrt(3)), so one year is
# 2 pi sqrt(3) ~ 10.883 time units.
YEAR = 2.0 * np.pi * np.sqrt(3.0)
# V_unit = sqrt(G M_unit / L_unit) = sqrt(3 G M_sun / au) with G M_sun = 1.32712440018e20 m^3/s^2
# and au = 1.495978707e11 m: V_unit = 51.588 km/s (= 2 pi sqrt(3) au/yr), so 1 km/s = 1 / 51.588.
KM_PER_S = 1.0 / (np.sqrt(3.0 * 1.32712440018e20 / 1.495978707e11) / 1e3)


def reference_initial_conditions(seed: int) -> ThreeBodySystem:
    """Random planar triple of Saz Ulibarrena & Portegies Zwart (2025), from their code.

    Three bodies of 1 M_sun (1/3 in N-body units). Body 0 at the origin moving at
    (0, 10) km/s; body 1 at (U[5, 20], U[0, 10]) au moving at (-10, 0) km/s; body 2 at
    (U[-10, 0], U[5, 20]) au at rest.

    Args:
        seed: The seed of ``np.random.default_rng``, whose one ``uniform`` call draws the four coordinates in
            that order.

    Returns:
        The system in the centre-of-mass frame.
    """
    coordinates = np.random.default_rng(seed).uniform(low=[5.0, 0.0, -10.0, 5.0], high=[20.0, 10.0, 0.0, 20.0])
    positions = np.zeros((3, 3))
    positions[1, :2] = coordinates[:2]
    positions[2, :2] = coordinates[2:]
    velocities = np.zeros((3, 3))
    velocities[0, 1] = 10.0 * KM_PER_S
    velocities[1, 0] = -10.0 * KM_PER_S
    return ThreeBodySystem(np.full(3, 1.0 / 3.0), positions, velocities).centre_of_mass_frame()


def pythagorean() -> ThreeBodySystem:
    """Burrau's Pythagorean problem (Szebehely & Peters 1967).

    Masses 3, 4, 5 at rest at the vertices (1, 3), (-2, -1), (1, -1) of a 3-4-5 right triangle; the centre of
    mass is at the origin.
    """
    positions = np.array([[1.0, 3.0, 0.0], [-2.0, -1.0, 0.0], [1.0, -1.0, 0.0]])
    return ThreeBodySystem(np.array([3.0, 4.0, 5.0]), positions, np.zeros((3, 3)))
