"""The union envelope of several sweeps and its bootstrap comparison, on constructed numbers."""

import math

import numpy as np
import pandas as pd
import pytest

from adaptstep.analysis import Frontier, UnionEnvelope, dominating, envelope_comparison, sweep_name

# two sweeps that cross: "a" is cheap at large errors, "b" wins below an error of 1e-6
POINTS = {"a:x=1": (10.0, 1e-2), "a:x=2": (100.0, 1e-6), "a:x=3": (1000.0, 1e-10),
          "b:x=1": (50.0, 1e-4), "b:x=2": (60.0, 1e-8), "b:x=3": (70.0, 1e-12)}


def envelope(points=POINTS):
    return UnionEnvelope(list(points), [c for c, _ in points.values()], [e for _, e in points.values()])


def test_sweep_names_drop_the_swept_settings():
    assert sweep_name("fixed:eta=0.01") == "fixed"
    assert sweep_name("whole:ias15,epsilon=1e-5") == "whole:ias15"
    assert sweep_name("whole:ias15,epsilon=1e-5@t_end=2") == "whole:ias15@t_end=2"
    assert sweep_name("runs/a/model.zip@backend=rebound-ias15") == "runs/a/model.zip@backend=rebound-ias15"
    assert sweep_name("random") == "random"


def test_frontier_keeps_pareto_points_and_interpolates_log_log():
    frontier = Frontier.of("s", ["p", "q", "r", "dominated"], np.array([10.0, 100.0, 1000.0, 200.0]),
                           np.array([1e-2, 1e-6, 1e-10, 1e-5]))
    assert frontier.controllers == ("p", "q", "r")
    error, points = frontier.error_at(math.sqrt(10 * 100))  # half way in log cost: half way in log error
    assert error == pytest.approx(1e-4) and points == ("p", "q")
    cost, points = frontier.cost_at(1e-8)
    assert cost == pytest.approx(10 ** 2.5) and points == ("q", "r")
    assert math.isnan(frontier.error_at(5.0)[0]) and math.isnan(frontier.cost_at(1e-11)[0])
    assert frontier.error_at(5000.0) == (1e-10, ("r",))  # beyond: the best point still achieves its error
    assert frontier.cost_at(1.0) == (10.0, ("p",))  # above the cheapest point's error: its cost


def test_union_envelope_is_the_pointwise_minimum_of_the_sweeps():
    union = envelope()
    at = union.error_at(math.sqrt(50 * 60))  # "a" at this cost ≈ 1e-5, "b" between 1e-4 and 1e-8
    assert at.sweep == "b" and at.controllers == ("b:x=1", "b:x=2") and at.value == pytest.approx(1e-6)
    assert union.error_at(20.0).sweep == "a"  # below "b"'s cheapest point only "a" exists
    assert union.cost_at(1e-3).sweep == "a" and union.cost_at(1e-3).value == pytest.approx(10 ** 1.25)
    assert union.cost_at(1e-9).value == pytest.approx(10 ** (math.log10(60) + 0.25 * math.log10(70 / 60)))
    assert math.isnan(union.cost_at(1e-13).value) and math.isnan(union.error_at(1.0).value)
    # b:x=1 lies above "a" (which reaches 1.6e-5 at cost 50), a:x=2 and a:x=3 above "b"
    assert list(union.points()["controller"]) == ["a:x=1", "b:x=2", "b:x=3"]
    costs, errors = union.curve(50)
    assert costs[0] == 10 and costs[-1] == 70 and errors[-1] == 1e-12 and np.all(np.diff(errors) <= 0)


def test_compare_gives_both_ratios_and_the_strongest_sweep():
    comparison = envelope().compare(cost=30.0, error=1e-8)  # cheaper than "b" at 1e-8 (60): ratio 0.5
    assert comparison["cost_ratio"] == pytest.approx(0.5)
    assert comparison["at_error"].sweep == "b" and comparison["at_error"].controllers == ("b:x=2",)
    assert comparison["error_ratio"] == pytest.approx(10 ** (-2 - 4 * math.log10(3)) / 1e-8)  # only "a" at 30
    assert dominating(65.0, 1e-8, list(POINTS), *zip(*POINTS.values())) == ["b:x=2"]
    assert dominating(30.0, 1e-8, list(POINTS), *zip(*POINTS.values())) == []


def test_envelope_comparison_bootstraps_over_paired_seeds():
    rng = np.random.default_rng(0)
    seeds = np.arange(40)
    rows = []
    for name, (cost, error) in POINTS.items():  # every row scattered ±0.1 decade around its point, per seed
        noise = rng.normal(0, 0.1, size=(2, len(seeds)))
        rows += [{"controller": name, "seed": s, "cost": cost * 10 ** nc, "energy_error": error * 10 ** ne}
                 for s, nc, ne in zip(seeds, *noise)]
    rows += [{"controller": "agent", "seed": s, "cost": 30.0, "energy_error": 1e-8} for s in seeds]
    table = pd.DataFrame(rows)
    result = envelope_comparison(table, ["agent"], list(POINTS), "energy_error", resamples=200, seed=1)
    row = result.set_index("controller").loc["agent"]
    assert row["cost_ratio_lo"] <= row["cost_ratio"] <= row["cost_ratio_hi"]
    assert 0.3 < row["cost_ratio"] < 0.8 and row["cost_ratio_hi"] < 1 and row["p_behind"] == 0
    assert row["strongest_at_error"] == "b" and row["dominated_by"] == ""
    again = envelope_comparison(table, ["agent"], list(POINTS), "energy_error", resamples=200, seed=1)
    pd.testing.assert_frame_equal(result, again)  # seeded
    plain = envelope_comparison(table, ["agent"], list(POINTS), "energy_error", resamples=0)
    assert plain["cost_ratio"].iloc[0] == row["cost_ratio"] and math.isnan(plain["cost_ratio_lo"].iloc[0])
    with pytest.raises(ValueError, match="every seed"):
        envelope_comparison(table[table.index != 0], ["agent"], list(POINTS), "energy_error", resamples=10)
