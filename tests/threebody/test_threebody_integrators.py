import math

import numpy as np
import pytest

from adaptstep.threebody import (
    BACKENDS,
    YEAR,
    IntegrationError,
    ThreeBodySystem,
    WorkLimitExceeded,
    make_integrator,
    pythagorean,
    reference_initial_conditions,
)
from adaptstep.threebody.integrators.hermite import ETA_START, aarseth_timescale
from adaptstep.threebody.kernels import accelerations_jerks

PARAMETERS = {"hermite": 0.01, "hermite-aarseth": 0.01, "leapfrog": 1e-3, "rebound-ias15": 1e-9, "rebound-bs": 1e-10}


def hierarchical_triple() -> ThreeBodySystem:
    """Equal-mass binary (a = 1, e = 0.5, starting at apocentre) with a light third body at r = 10."""
    apocentre, speed = 1.5, math.sqrt(0.5 / 1.5)
    positions = np.array([[-apocentre / 2, 0, 0], [apocentre / 2, 0, 0], [10.0, 0, 0]])
    velocities = np.array([[0, -speed / 2, 0], [0, speed / 2, 0], [0, math.sqrt(1.1 / 10), 0]])
    return ThreeBodySystem(np.array([0.5, 0.5, 0.1]), positions, velocities).centre_of_mass_frame()


def relative_energy_error(backend: str, system: ThreeBodySystem, t_end: float, parameter: float) -> float:
    integrator = make_integrator(backend, system)
    integrator.evolve(t_end, parameter)
    return abs(integrator.energy() / system.energy() - 1.0)


@pytest.mark.parametrize(
    ("backend", "parameters", "order"),
    [("hermite", [0.005, 0.01, 0.02, 0.04], 4.0), ("hermite-aarseth", [0.005, 0.01, 0.02, 0.04], 4.0),
     ("leapfrog", [0.0025, 0.005, 0.01, 0.02], 2.0)],
)
def test_energy_error_converges_at_the_scheme_order(backend, parameters, order):
    system = hierarchical_triple()
    errors = [relative_energy_error(backend, system, 10.0, p) for p in parameters]
    slope = np.polyfit(np.log(parameters), np.log(errors), 1)[0]
    assert abs(slope - order) <= 0.5, (errors, slope)


def test_hermite_matches_ias15_on_the_pythagorean_problem():
    reference = make_integrator("rebound-ias15", pythagorean())
    reference.evolve(10.0, 1e-12)
    hermite = make_integrator("hermite", pythagorean())
    hermite.evolve(10.0, 1e-3)  # ~56k steps, ~10 ms
    scale = np.max(np.abs(reference.positions))
    assert np.max(np.linalg.norm(hermite.positions - reference.positions, axis=1)) / scale <= 1e-6


def test_aarseth_hermite_matches_ias15_on_the_pythagorean_problem():
    reference = make_integrator("rebound-ias15", pythagorean())
    reference.evolve(10.0, 1e-12)
    aarseth = make_integrator("hermite-aarseth", pythagorean())
    assert aarseth.evolve(10.0, 3e-3) < 60_000  # ~49k steps, ~20 ms
    scale = np.max(np.abs(reference.positions))
    assert np.max(np.linalg.norm(aarseth.positions - reference.positions, axis=1)) / scale <= 1e-7


def test_aarseth_starting_step_and_criterion():
    system = hierarchical_triple()
    integrator = make_integrator("hermite-aarseth", system)
    a, j = np.empty((3, 3)), np.empty((3, 3))
    tau_coll = accelerations_jerks(system.masses, system.positions, system.velocities, a, j)
    start = ETA_START * min(np.min(np.linalg.norm(a, axis=1) / np.linalg.norm(j, axis=1)), tau_coll)
    with pytest.raises(WorkLimitExceeded):
        integrator.evolve(10.0, 0.02, max_force_evaluations=1)
    assert integrator.time == pytest.approx(start, rel=1e-14)
    # uniform circular motion a(t) = -ω² R (cos ωt, sin ωt, 0): |a⁽²⁾| = ω|ȧ| = ω²|a|, |a⁽³⁾| = ω³|a|, so the
    # criterion's time scale is exactly 1/ω; the Hermite interpolation of a and ȧ over dt recovers it to O(dt²)
    omega, radius, dt = 2.0, 3.0, 1e-2

    def derivatives(t):
        phase = np.array([np.cos(omega * t), np.sin(omega * t), 0.0])
        turned = np.array([-np.sin(omega * t), np.cos(omega * t), 0.0])
        return np.tile(-omega**2 * radius * phase, (3, 1)), np.tile(-omega**3 * radius * turned, (3, 1))

    tau = aarseth_timescale(*derivatives(0.3), *derivatives(0.3 + dt), dt)
    assert tau == pytest.approx(1 / omega, rel=1e-3)

@pytest.mark.parametrize(
    ("backend", "parameter", "energy_tol", "angular_tol"),
    [
        ("hermite", 1e-3, 1e-9, 1e-9),
        ("leapfrog", 1e-4, 1e-4, 1e-12),  # symplectic: L exact up to round-off, E bounded O(dt^2)
        ("rebound-ias15", 1e-9, 1e-12, 1e-12),
        ("rebound-bs", 1e-10, 1e-8, 1e-8),
    ],
)
def test_conservation_on_the_pythagorean_problem(backend, parameter, energy_tol, angular_tol):
    system = pythagorean()
    integrator = make_integrator(backend, system)
    integrator.evolve(10.0, parameter)
    final = ThreeBodySystem(system.masses, integrator.positions, integrator.velocities)
    assert abs(integrator.energy() / system.energy() - 1.0) < energy_tol
    assert integrator.energy() == pytest.approx(final.energy(), rel=1e-14)
    # |L| is 0 initially: compare with the scale sum m |x| |v|
    scale = np.sum(system.masses * np.linalg.norm(final.positions, axis=1) * np.linalg.norm(final.velocities, axis=1))
    assert np.max(np.abs(final.angular_momentum())) / scale < angular_tol
    assert np.max(np.abs(final.momentum())) / np.sum(system.masses * np.linalg.norm(final.velocities, axis=1)) < 1e-13


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_evolve_lands_exactly_and_repeated_calls_continue(backend):
    parameter = PARAMETERS[backend]
    system = reference_initial_conditions(1)
    stepped = make_integrator(backend, system)
    used = 0
    for k in range(1, 11):
        used += stepped.evolve(k * 0.1 * YEAR, parameter)
        assert stepped.time == k * 0.1 * YEAR
    assert stepped.force_evaluations - used == (0 if backend.startswith("rebound") else 1)
    direct = make_integrator(backend, system)
    direct.evolve(YEAR, parameter)
    np.testing.assert_allclose(stepped.positions, direct.positions, rtol=0, atol=1e-8)
    assert not np.allclose(stepped.positions, system.positions)
    assert stepped.evolve(stepped.time, parameter) == 0


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_overshoot_calls_take_the_steps_of_one_call(backend):
    """exact=False: each call stops at its first step past t_end, unshortened, and the integrator keeps its
    adapted step, so the chopped run is the uninterrupted one (bit for bit) and costs no more than exact landing."""
    parameter = {**PARAMETERS, "rebound-ias15": 1e-5}[backend]
    system = reference_initial_conditions(1)
    chopped, exact = make_integrator(backend, system), make_integrator(backend, system)
    for k in range(1, 21):
        chopped.evolve(k * 0.1 * YEAR, parameter, exact=False)  # a time already passed takes no step
        exact.evolve(k * 0.1 * YEAR, parameter)
        assert chopped.time >= k * 0.1 * YEAR
    one = make_integrator(backend, system)
    one.evolve(chopped.time * (1 - 1e-12), parameter, exact=False)  # leapfrog's clock rounds differently
    assert one.time == pytest.approx(chopped.time, rel=1e-14) and one.force_evaluations == chopped.force_evaluations
    np.testing.assert_array_equal(one.positions, chopped.positions)
    np.testing.assert_array_equal(one.velocities, chopped.velocities)
    assert chopped.force_evaluations <= exact.force_evaluations
    assert chopped.evolve(chopped.time - 1.0, parameter, exact=False) == 0


def test_leapfrog_overshoot_takes_full_steps():
    integrator = make_integrator("leapfrog", pythagorean())
    assert integrator.evolve(1.0, 0.01, exact=False) == 100
    assert integrator.evolve(1.005, 0.01, exact=False) == 1  # a full step, past t_end
    assert integrator.time == pytest.approx(1.01, abs=1e-15)

def test_leapfrog_cost_is_the_number_of_steps():
    integrator = make_integrator("leapfrog", pythagorean())
    assert integrator.force_evaluations == 1  # initial acceleration
    assert integrator.evolve(1.0, 0.01) == 100
    assert integrator.evolve(1.005, 0.01) == 1  # one shortened step lands on t_end
    assert integrator.evolve(2.0, 0.001) == 995
    assert integrator.force_evaluations == 1 + 100 + 1 + 995
    assert integrator.time == 2.0


def test_hermite_cost_grows_as_eta_shrinks():
    costs = [make_integrator("hermite", pythagorean()).evolve(5.0, eta) for eta in (0.1, 0.01, 0.001)]
    assert costs[0] < costs[1] < costs[2]
    assert 5 < costs[1] / costs[0] < 20 and 5 < costs[2] / costs[1] < 20  # roughly proportional to 1/eta


def test_ias15_counts_one_plus_seven_evaluations_per_iteration():
    integrator = make_integrator("rebound-ias15", reference_initial_conditions(0))
    used = integrator.evolve(10 * YEAR, 1e-9)
    steps = integrator.steps_done
    assert used == integrator.force_evaluations > 0
    # each step: 1 evaluation at its start + 7 substeps per predictor-corrector iteration (>= 2 iterations)
    assert used >= 15 * steps
    assert (used - steps) % 7 == 0


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_work_limit_stops_at_a_completed_step(backend):
    parameter = {**PARAMETERS, "hermite": 1e-3, "hermite-aarseth": 1e-3}[backend]
    system = pythagorean()
    integrator = make_integrator(backend, system)
    before = integrator.force_evaluations
    with pytest.raises(WorkLimitExceeded):
        integrator.evolve(10.0, parameter, max_force_evaluations=50)
    used = integrator.force_evaluations - before
    if not backend.startswith("rebound"):
        assert used == 50
    else:
        assert 50 <= used < 50 + 200  # REBOUND finishes the step in progress
    assert 0 < integrator.time < 10.0
    assert np.all(np.isfinite(integrator.positions))
    assert abs(integrator.energy() / system.energy() - 1.0) < 1e-6
    integrator.evolve(10.0, parameter)  # the state stays usable
    assert integrator.time == 10.0


def test_leapfrog_work_limit_state_is_the_last_step():
    integrator = make_integrator("leapfrog", pythagorean())
    with pytest.raises(WorkLimitExceeded):
        integrator.evolve(1.0, 0.01, max_force_evaluations=30)
    assert integrator.time == pytest.approx(0.3, abs=1e-15)
    reference = make_integrator("leapfrog", pythagorean())
    reference.evolve(0.3, 0.01)
    np.testing.assert_allclose(integrator.positions, reference.positions, rtol=1e-14)


def test_head_on_collision_raises_integration_error():
    system = ThreeBodySystem(np.ones(3), np.array([[-0.5, 0, 0], [0.5, 0, 0], [0, 50.0, 0]]), np.zeros((3, 3)))
    integrator = make_integrator("hermite", system)
    with pytest.raises(IntegrationError) as caught:
        integrator.evolve(1.0, 0.1, max_force_evaluations=100_000)
    assert not isinstance(caught.value, WorkLimitExceeded)
    assert integrator.time < 1.0


def test_unknown_backend_is_rejected():
    with pytest.raises(ValueError, match="backend must be one of .*'nope'"):
        make_integrator("nope", pythagorean())


@pytest.mark.parametrize("backend", sorted(BACKENDS))
@pytest.mark.parametrize(
    ("t_end", "parameter", "limit", "name"),
    [
        (1.0, 0.0, None, "parameter"),
        (1.0, -1e-3, None, "parameter"),
        (1.0, math.nan, None, "parameter"),
        (1.0, math.inf, None, "parameter"),
        (-1.0, 1e-3, None, "t_end"),
        (math.nan, 1e-3, None, "t_end"),
        (1.0, 1e-3, -1, "max_force_evaluations"),
        (1.0, 1e-3, 2.5, "max_force_evaluations"),
    ],
)
def test_bad_evolve_arguments_raise_naming_the_parameter(backend, t_end, parameter, limit, name):
    integrator = make_integrator(backend, pythagorean())
    with pytest.raises(ValueError, match=name):
        integrator.evolve(t_end, parameter, limit)
    assert integrator.time == 0.0


@pytest.mark.parametrize("backend", sorted(BACKENDS))
def test_backend_metadata(backend):
    cls = BACKENDS[backend]
    lo, hi = cls.parameter_range
    assert cls.name == backend and 0 < lo < hi
    assert cls.parameter_name == {"hermite": "eta", "hermite-aarseth": "eta", "leapfrog": "dt"}.get(backend, "epsilon")
