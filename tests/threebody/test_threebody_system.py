import numpy as np
import pytest

from adaptstep.threebody import KM_PER_S, YEAR, ThreeBodySystem, pythagorean, reference_initial_conditions


def test_units_match_the_reference_code():
    # one year = 2 pi sqrt(3) N-body times; 1 au/yr = 4.7405 km/s, so V_unit = 2 pi sqrt(3) * 4.7405 km/s
    assert YEAR == pytest.approx(10.8828, abs=1e-4)
    assert 1.0 / KM_PER_S == pytest.approx(YEAR * 4.7405, rel=1e-4)


def test_identical_seeds_give_identical_systems_and_different_seeds_differ():
    a, b, c = reference_initial_conditions(3), reference_initial_conditions(3), reference_initial_conditions(4)
    for name in ("masses", "positions", "velocities"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.allclose(a.positions, c.positions)


@pytest.mark.parametrize("seed", range(5))
def test_reference_initial_conditions_follow_the_paper(seed):
    system = reference_initial_conditions(seed)
    np.testing.assert_allclose(system.masses, 1.0 / 3.0)
    np.testing.assert_allclose(system.masses @ system.positions, 0.0, atol=1e-14)
    np.testing.assert_allclose(system.momentum(), 0.0, atol=1e-16)
    assert np.all(system.positions[:, 2] == 0.0) and np.all(system.velocities[:, 2] == 0.0)
    # undo the centre-of-mass shift: body 0 sits at the origin before it
    relative = system.positions - system.positions[0]
    assert 5 <= relative[1, 0] <= 20 and 0 <= relative[1, 1] <= 10
    assert -10 <= relative[2, 0] <= 0 and 5 <= relative[2, 1] <= 20
    relative_v = (system.velocities - system.velocities[2]) / KM_PER_S
    np.testing.assert_allclose(relative_v[:2, :2], [[0.0, 10.0], [-10.0, 0.0]], atol=1e-12)


def test_pythagorean_energy_and_invariants():
    system = pythagorean()
    # E = -(12/5 + 15/2 + 20/4) at rest: pairs (3,4) r=5, (3,5) r=4, (4,5) r=3
    assert system.energy() == pytest.approx(-(12 / 5 + 15 / 4 + 20 / 3))
    np.testing.assert_array_equal(system.momentum(), 0.0)
    np.testing.assert_array_equal(system.angular_momentum(), 0.0)
    np.testing.assert_allclose(system.masses @ system.positions, 0.0)


def test_centre_of_mass_frame_preserves_relative_motion():
    moving = ThreeBodySystem(np.array([1.0, 2.0, 3.0]), np.arange(9.0).reshape(3, 3) ** 1.5, np.eye(3))
    com = moving.centre_of_mass_frame()
    np.testing.assert_allclose(com.masses @ com.positions, 0.0, atol=1e-12)
    np.testing.assert_allclose(com.momentum(), 0.0, atol=1e-15)
    np.testing.assert_allclose(np.diff(com.positions, axis=0), np.diff(moving.positions, axis=0))
    assert com.energy() < moving.energy()  # the bulk kinetic energy is removed


def test_system_arrays_are_read_only_copies():
    positions = np.ones((3, 3)) * np.arange(3)[:, None]
    system = ThreeBodySystem(np.ones(3), positions, np.zeros((3, 3)))
    positions[0, 0] = 99.0
    assert system.positions[0, 0] == 0.0
    with pytest.raises(ValueError):
        system.positions[0, 0] = 1.0


@pytest.mark.parametrize(
    ("masses", "positions", "velocities", "name"),
    [
        ([1.0, 0.0, 1.0], np.eye(3), np.zeros((3, 3)), "masses"),
        ([1.0, -1.0, 1.0], np.eye(3), np.zeros((3, 3)), "masses"),
        ([1.0, np.nan, 1.0], np.eye(3), np.zeros((3, 3)), "masses"),
        ([1.0, 1.0], np.eye(3), np.zeros((3, 3)), "masses"),
        ([1.0, 1.0, 1.0], np.full((3, 3), np.nan), np.zeros((3, 3)), "positions"),
        ([1.0, 1.0, 1.0], np.eye(3)[:, :2], np.zeros((3, 3)), "positions"),
        ([1.0, 1.0, 1.0], np.eye(3), np.full((3, 3), np.inf), "velocities"),
        ([1.0, 1.0, 1.0], np.eye(3), np.zeros(9), "velocities"),
    ],
)
def test_invalid_systems_raise_naming_the_parameter(masses, positions, velocities, name):
    with pytest.raises(ValueError, match=name):
        ThreeBodySystem(np.array(masses), positions, velocities)
