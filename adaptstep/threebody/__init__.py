"""The chaotic gravitational three-body problem (G = 1 N-body units, no softening)."""

from adaptstep.core.lazy import lazy_exports

EXPORTS = {
    "KM_PER_S": "adaptstep.threebody.initial_conditions",
    "YEAR": "adaptstep.threebody.initial_conditions",
    "pythagorean": "adaptstep.threebody.initial_conditions",
    "reference_initial_conditions": "adaptstep.threebody.initial_conditions",
    "BACKENDS": "adaptstep.threebody.integrators",
    "IntegrationError": "adaptstep.threebody.integrators",
    "Integrator": "adaptstep.threebody.integrators",
    "WorkLimitExceeded": "adaptstep.threebody.integrators",
    "make_integrator": "adaptstep.threebody.integrators",
    "AdvanceResult": "adaptstep.threebody.process",
    "ThreeBodyProcess": "adaptstep.threebody.process",
    "ThreeBodySystem": "adaptstep.threebody.system",
}
__all__ = sorted(EXPORTS)
__getattr__ = lazy_exports(__name__, EXPORTS)
