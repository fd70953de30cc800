"""Family-free pieces of the strongest-baseline protocol and the bootstrap statistics."""

import numpy as np
import pytest

from adaptstep.analysis import bootstrap_mean, paired_difference
from adaptstep.core.heldout import best_of, check_disjoint


def test_overlapping_seed_sets_are_rejected_and_disjoint_ones_pass():
    check_disjoint(range(0, 10), range(10, 20))
    with pytest.raises(ValueError, match=r"disjoint.*\[9\]"):
        check_disjoint(range(0, 10), range(9, 20))


def test_best_of_follows_the_direction_and_breaks_ties_by_name():
    assert best_of({"b": 1.0, "a": 1.0, "c": 0.5}, higher_is_better=True) == "a"
    assert best_of({"b": 1.0, "c": 0.5}, higher_is_better=False) == "c"
    with pytest.raises(ValueError, match="at least one"):
        best_of({}, True)


def test_bootstrap_interval_covers_the_mean_and_shrinks_with_more_data():
    rng = np.random.default_rng(0)
    small, large = rng.normal(size=50), rng.normal(size=5000)
    mean, low, high = bootstrap_mean(small)
    assert low < mean < high and mean == pytest.approx(small.mean())
    _, low_large, high_large = bootstrap_mean(large)
    assert high_large - low_large < (high - low) / 5
    assert np.isnan(bootstrap_mean([np.nan, np.nan])[0])


def test_paired_difference_sees_a_shift_that_unpaired_noise_hides():
    rng = np.random.default_rng(1)
    base = rng.normal(scale=10, size=400)
    mean, low, high = paired_difference(base + 0.1, base)
    assert mean == pytest.approx(0.1) and low == pytest.approx(0.1) and high == pytest.approx(0.1)
    with pytest.raises(ValueError, match="paired"):
        paired_difference([1.0, 2.0], [1.0])
