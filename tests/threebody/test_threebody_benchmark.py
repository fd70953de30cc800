import pytest

from adaptstep.threebody import make_integrator, reference_initial_conditions
from adaptstep.threebody.benchmark import force_throughput


@pytest.mark.parametrize(("backend", "parameter"), [("hermite", 1e-2), ("leapfrog", 1e-2), ("rebound-ias15", 1e-9)])
def test_force_throughput_counts_the_same_work_as_evolve(backend, parameter):
    system = reference_initial_conditions(0)
    result = force_throughput(backend, system, 20.0, parameter, repeats=2)
    assert result["force_evaluations"] == make_integrator(backend, system).evolve(20.0, parameter)
    assert result["wall_seconds"] > 0
    assert result["evaluations_per_second"] == pytest.approx(result["force_evaluations"] / result["wall_seconds"])


def test_force_throughput_rejects_zero_repeats():
    with pytest.raises(ValueError, match="repeats"):
        force_throughput("hermite", reference_initial_conditions(0), 1.0, 1e-2, repeats=0)
