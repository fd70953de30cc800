"""The sampler bench's ratio to the strongest baseline and its paired bootstrap CI."""

import math

import numpy as np
import pandas as pd

from adaptstep.diffusion.bench import paired_ratio, pooled_table, ratios_to_strongest


def test_paired_ratio_of_proportional_errors_is_exact_and_its_ci_collapses():
    baseline = np.random.default_rng(0).exponential(size=500)
    ratio, low, high = paired_ratio(0.5 * baseline, baseline)
    assert max(abs(ratio - 0.5), abs(low - 0.5), abs(high - 0.5)) < 1e-9


def test_paired_ratio_ci_covers_the_ratio_and_unpaired_samples_give_no_ci():
    rng = np.random.default_rng(1)
    a, b = rng.exponential(size=400), rng.exponential(size=400)
    ratio, low, high = paired_ratio(a, b)
    assert ratio == math.sqrt(np.mean(a**2) / np.mean(b**2)) and low < ratio < high
    assert all(math.isnan(value) for value in paired_ratio(a, b[:300])[1:])


def test_ratios_to_strongest_pairs_samples_by_seed():
    """Rows arrive in any order; the errors pair by seed, so a method at half the strongest's errors has ratio 0.5
    with a zero-width CI."""
    rng = np.random.default_rng(2)
    strongest = {seed: rng.exponential(size=4).tolist() for seed in (10, 11, 12)}
    rows = [{"method": "base", "controller": "base", "cost": 4, "seed": seed, "error": 1.0, "sample_errors": errors}
            for seed, errors in strongest.items()]
    rows += [{"method": "agent", "controller": "agent", "cost": 4, "seed": seed, "error": 1.0,
              "sample_errors": [0.5 * e for e in strongest[seed]]} for seed in (12, 10, 11)]
    pooled = pooled_table(pd.DataFrame(rows))
    tuning = pd.DataFrame([{"nfe": 4, "controller": "base", "winner": True}])
    table = ratios_to_strongest(pooled, tuning)
    assert list(table["method"]) == ["agent"] and table["ratio_to_strongest"].iloc[0] == 0.5
    assert table["ratio [95% CI]"].iloc[0] == "0.50 [0.50, 0.50]"
