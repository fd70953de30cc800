"""Three-body integrators behind one interface, selected by backend name."""

from adaptstep.threebody.integrators.base import IntegrationError, Integrator, WorkLimitExceeded
from adaptstep.threebody.integrators.hermite import AarsethHermiteIntegrator, HermiteIntegrator
from adaptstep.threebody.integrators.leapfrog import LeapfrogIntegrator
from adaptstep.threebody.integrators.rebound_backend import BSIntegrator, IAS15Integrator, ReboundIntegrator
from adaptstep.threebody.system import ThreeBodySystem

BACKENDS: dict[str, type[Integrator]] = {
    cls.name: cls
    for cls in (HermiteIntegrator, AarsethHermiteIntegrator, LeapfrogIntegrator, IAS15Integrator, BSIntegrator)
}


def make_integrator(backend: str, system: ThreeBodySystem) -> Integrator:
    """A fresh integrator of the named backend starting from ``system``."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {sorted(BACKENDS)}, got {backend!r}")
    return BACKENDS[backend](system)


__all__ = [
    "BACKENDS",
    "AarsethHermiteIntegrator",
    "BSIntegrator",
    "HermiteIntegrator",
    "IAS15Integrator",
    "IntegrationError",
    "Integrator",
    "LeapfrogIntegrator",
    "ReboundIntegrator",
    "WorkLimitExceeded",
    "make_integrator",
]
