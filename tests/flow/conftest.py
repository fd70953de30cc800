import pytest

from adaptstep.flow.gmm_flow import gmm_flow_2d
from adaptstep.flow.verifiers import Verifier, sub_mixture_log_density


@pytest.fixture(scope="module")
def flow():
    """The exact 8-mode ring flow, float64 on the CPU."""
    return gmm_flow_2d(device="cpu")


@pytest.fixture(scope="module")
def verifier(flow):
    """The log-density of the ring's mode 0."""
    return Verifier("mode0", sub_mixture_log_density(flow, [0]))
