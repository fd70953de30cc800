"""The chaotic gravitational three-body problem (G = 1 N-body units, no softening)."""

from adaptstep.threebody.initial_conditions import KM_PER_S, YEAR, pythagorean, reference_initial_conditions
from adaptstep.threebody.integrators import (
    BACKENDS,
    IntegrationError,
    Integrator,
    WorkLimitExceeded,
    make_integrator,
)
from adaptstep.threebody.process import AdvanceResult, ThreeBodyProcess
from adaptstep.threebody.system import ThreeBodySystem

__all__ = [
    "BACKENDS",
    "KM_PER_S",
    "YEAR",
    "AdvanceResult",
    "IntegrationError",
    "Integrator",
    "ThreeBodyProcess",
    "ThreeBodySystem",
    "WorkLimitExceeded",
    "make_integrator",
    "pythagorean",
    "reference_initial_conditions",
]
