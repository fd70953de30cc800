"""Immutable state of a three-body system in N-body units (G = 1)."""

from dataclasses import dataclass

import numpy as np

from adaptstep.threebody.kernels import total_energy


def _frozen_array(name: str, value: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    array = np.array(value, dtype=np.float64)
    if array.shape != shape:
        raise ValueError(f"{name} must have shape {shape}, got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite, got {array.tolist()}")
    array.flags.writeable = False
    return array


@dataclass(frozen=True)
class ThreeBodySystem:
    """Masses ``(3,)``, positions ``(3, 3)`` and velocities ``(3, 3)`` as read-only float64 copies.

    Args:
        masses: The three masses, > 0, in N-body units.
        positions: Positions, shape (3, 3), in N-body units.
        velocities: Velocities, shape (3, 3), in N-body units.

    Raises:
        ValueError: If an array has the wrong shape or non-finite values, or a mass is not > 0.
    """

    masses: np.ndarray
    positions: np.ndarray
    velocities: np.ndarray

    def __post_init__(self) -> None:
        masses = _frozen_array("masses", self.masses, (3,))
        if not np.all(masses > 0):
            raise ValueError(f"masses must be > 0, got {masses.tolist()}")
        object.__setattr__(self, "masses", masses)
        object.__setattr__(self, "positions", _frozen_array("positions", self.positions, (3, 3)))
        object.__setattr__(self, "velocities", _frozen_array("velocities", self.velocities, (3, 3)))

    def energy(self) -> float:
        """Total energy E = sum m v^2 / 2 - sum_{i<j} m_i m_j / r_ij."""
        return float(total_energy(self.masses, self.positions, self.velocities))

    def momentum(self) -> np.ndarray:
        """Total linear momentum P = sum m_i v_i."""
        return self.masses @ self.velocities

    def angular_momentum(self) -> np.ndarray:
        """Total angular momentum L = sum m_i x_i × v_i about the origin."""
        return self.masses @ np.cross(self.positions, self.velocities)

    def centre_of_mass_frame(self) -> "ThreeBodySystem":
        """The same system shifted so that the centre of mass is at rest at the origin."""
        total = self.masses.sum()
        return ThreeBodySystem(
            self.masses,
            self.positions - self.masses @ self.positions / total,
            self.velocities - self.masses @ self.velocities / total,
        )
