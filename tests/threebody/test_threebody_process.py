import math

import numpy as np
import pytest

from adaptstep.threebody import (
    BACKENDS,
    YEAR,
    ThreeBodyProcess,
    ThreeBodySystem,
    pythagorean,
    reference_initial_conditions,
)
from adaptstep.threebody.integrators import HermiteIntegrator


def test_advance_reports_cost_and_energy_error():
    system = reference_initial_conditions(0)
    process = ThreeBodyProcess(system)
    assert isinstance(process.integrator, HermiteIntegrator)
    assert (process.parameter_name, process.parameter_range) == ("eta", (1e-4, 1e-1))
    assert process.initial_energy == system.energy() and process.energy_error == 0.0
    total = process.force_evaluations
    for k in range(1, 6):
        result = process.advance(0.1 * YEAR, 1e-2)
        total += result.cost
        assert result.failure is None and result.cost > 0
        assert result.energy_error == process.energy_error < 1e-8
        assert process.time == pytest.approx(k * 0.1 * YEAR, rel=1e-15)
    assert process.force_evaluations == total
    np.testing.assert_array_equal(process.masses, system.masses)
    assert process.positions.shape == process.velocities.shape == (3, 3)


def test_smaller_parameter_costs_more_and_is_more_accurate():
    coarse, fine = ThreeBodyProcess(pythagorean()), ThreeBodyProcess(pythagorean())
    a, b = coarse.advance(3.0, 0.1), fine.advance(3.0, 0.01)
    assert a.cost < b.cost and b.energy_error < a.energy_error


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_work_limit_is_reported_not_raised(backend):
    process = ThreeBodyProcess(pythagorean(), backend, max_force_evaluations_per_advance=20)
    parameter = process.parameter_range[0]
    result = process.advance(5.0, parameter)
    assert result.failure == "work_limit"
    assert result.cost >= 20 and process.time < 5.0
    assert math.isfinite(result.energy_error)


def test_collision_is_reported_as_non_finite():
    system = ThreeBodySystem(np.ones(3), np.array([[-0.5, 0, 0], [0.5, 0, 0], [0, 50.0, 0]]), np.zeros((3, 3)))
    process = ThreeBodyProcess(system, "hermite")
    results = [process.advance(0.2, 0.1) for _ in range(5)]
    failures = [r.failure for r in results]
    assert failures[:3] == [None, None, None] and "non_finite" in failures
    assert process.time < 1.0  # free-fall collision at t = pi/4 ~ 0.785


def test_process_argument_validation():
    with pytest.raises(ValueError, match="backend"):
        ThreeBodyProcess(pythagorean(), "euler")
    with pytest.raises(ValueError, match="max_force_evaluations_per_advance"):
        ThreeBodyProcess(pythagorean(), max_force_evaluations_per_advance=0)
    process = ThreeBodyProcess(pythagorean())
    for interval in (0.0, -1.0, math.nan):
        with pytest.raises(ValueError, match="interval"):
            process.advance(interval, 1e-2)
    for parameter in (0.0, math.nan):
        with pytest.raises(ValueError, match="parameter"):
            process.advance(1.0, parameter)
    assert process.time == 0.0 and process.force_evaluations == 1


def test_advance_to_overshoots_or_lands_and_uses_its_work_limit():
    exact, overshoot = ThreeBodyProcess(pythagorean()), ThreeBodyProcess(pythagorean())
    assert exact.advance_to(1.0, 0.1).failure is None and exact.time == 1.0
    assert overshoot.advance_to(1.0, 0.1, exact=False).failure is None and overshoot.time >= 1.0
    assert overshoot.advance_to(overshoot.time, 0.1).cost == 0
    with pytest.raises(ValueError, match="time"):
        overshoot.advance_to(0.5, 0.1)
    limited = ThreeBodyProcess(pythagorean())
    result = limited.advance_to(5.0, 1e-3, max_force_evaluations=7)
    assert (result.cost, result.failure) == (7, "work_limit")
