"""The unrolled three-body force kernels equal the pair loops bit for bit (signed zeros and nan included)."""

import numpy as np
import pytest

from adaptstep.threebody.kernels import accelerations, accelerations3, accelerations_jerks, accelerations_jerks3


def states():
    """Random states, plus degenerate ones: coincident bodies, a nan position, a body at rest with zero offsets."""
    rng = np.random.default_rng(0)
    for _ in range(200):
        yield rng.uniform(0.1, 3.0, 3), rng.normal(size=(3, 3)) * 10.0 ** rng.uniform(-3, 2), rng.normal(size=(3, 3))
    masses = np.array([1.0, 2.0, 3.0])
    coincident = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0], [1.0, 0.0, 0.0]])
    yield masses, coincident, np.zeros((3, 3))
    not_a_number = np.array([[np.nan, 0.0, 0.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])
    yield masses, not_a_number, np.ones((3, 3))
    planar = np.array([[0.0, 0.0, 0.0], [-1.0, 0.0, 0.0], [0.0, 2.0, 0.0]])
    yield masses, planar, np.zeros((3, 3))


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_unrolled_kernels_equal_the_pair_loops_bit_for_bit():
    for masses, positions, velocities in states():
        loop_acc, loop_jerk, acc, jerk = (np.full((3, 3), 7.0) for _ in range(4))
        loop_tau = accelerations_jerks(masses, positions, velocities, loop_acc, loop_jerk)
        tau = accelerations_jerks3(masses, positions, velocities, acc, jerk)
        for ours, theirs in ((acc, loop_acc), (jerk, loop_jerk), (np.array(tau), np.array(loop_tau))):
            np.testing.assert_array_equal(ours, theirs)
            np.testing.assert_array_equal(np.signbit(ours), np.signbit(theirs))
        accelerations(masses, positions, loop_acc)
        accelerations3(masses, positions, acc)
        np.testing.assert_array_equal(acc, loop_acc)
        np.testing.assert_array_equal(np.signbit(acc), np.signbit(loop_acc))
