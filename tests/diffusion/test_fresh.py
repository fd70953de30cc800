"""The sampler bench's fresh-noise check: disjoint seeds, the paired ratio and the switch floor."""

import math

import numpy as np
import pandas as pd
import pytest

from adaptstep.diffusion.bench import off_env_rows
from adaptstep.diffusion.fresh import fresh_rows, fresh_summary, switch_floors, switched

KWARGS = {"model": "gmm-2d", "batch_size": 8}
AGENT, WINNER = "schedule:logsnr_uniform,solver=dpmpp2m", "schedule:time_uniform,solver=dpmpp3m"


def ipndm(noise, nfe):
    return off_env_rows("gmm-2d", 8, noise, [nfe], False, ("ipndm",))


def row(method, seed, noise, errors, rate):
    return {"method": method, "controller": method, "nfe": 5, "seed": seed, "noise_seed": noise,
            "sample_errors": errors, "mode_switch_rate": rate}


def test_switched_marks_a_batchs_rate_times_size_largest_errors():
    assert switched([0.1, 2.0, 0.3, 1.5], 0.5).tolist() == [False, True, False, True]
    assert not switched([0.1, 2.0], 0.0).any() and not switched([0.1, 2.0], math.nan).any()


def test_fresh_summary_on_a_constructed_case_with_one_switched_sample():
    """Two batches of 4; the strongest switches sample 3 of the first batch (error 1.4), the agent switches nothing
    and halves every other error. Floor 1/16 on the tuning noise."""
    best = [[0.2, 0.2, 1.4, 0.2], [0.2, 0.2, 0.2, 0.2]]
    agent = [[0.1, 0.1, 0.1, 0.1], [0.1, 0.1, 0.1, 0.1]]
    rows = pd.DataFrame([row("strongest", 1, 11, best[0], 0.25), row("strongest", 2, 12, best[1], 0.0),
                         row("agent", 2, 12, agent[1], 0.0), row("agent", 1, 11, agent[0], 0.0)])
    summary = fresh_summary(rows, {5: 1 / 16}).iloc[0]
    best_mse = (7 * 0.04 + 1.96) / 8
    assert summary["strongest_rmse"] == pytest.approx(math.sqrt(best_mse))
    assert summary["ratio"] == pytest.approx(math.sqrt(0.01 / best_mse))
    assert summary["ratio_low"] <= summary["ratio"] <= summary["ratio_high"]
    assert summary["strongest_switch_rate"] == 1 / 8 and summary["agent_switch_rate"] == 0
    assert summary["ratio_without_switches"] == pytest.approx(0.5)  # 0.1 against 0.2 on the 7 unswitched samples
    assert summary["floor_ratio"] == pytest.approx(math.sqrt(1.96 / 16 / best_mse))
    assert summary["switch_floor"] == 1 / 16 and summary["samples"] == 8


def test_the_paired_ci_of_proportional_errors_collapses_and_unpaired_noise_is_refused():
    errors = np.random.default_rng(0).exponential(size=(3, 16))
    rows = pd.DataFrame([row("strongest", seed, 100 + seed, errors[seed].tolist(), math.nan) for seed in range(3)]
                        + [row("agent", seed, 100 + seed, (0.5 * errors[seed]).tolist(), math.nan)
                           for seed in range(3)])
    summary = fresh_summary(rows.drop(columns="mode_switch_rate")).iloc[0]
    assert (summary["ratio"], summary["ratio_low"], summary["ratio_high"]) == pytest.approx((0.5, 0.5, 0.5))
    assert math.isnan(summary["agent_switch_rate"]) and math.isnan(summary["floor_ratio"])
    rows.loc[rows["method"] == "agent", "noise_seed"] += 1
    with pytest.raises(ValueError, match="different noise"):
        fresh_summary(rows)


def test_switch_floors_are_the_lowest_mean_rate_of_any_candidate_per_nfe():
    tuning = pd.DataFrame({"nfe": [5, 5, 5, 5, 10], "controller": ["a", "a", "b", "b", "a"],
                           "mode_switch_rate": [0.1, 0.3, 0.15, 0.2, 0.0]})
    assert switch_floors(tuning) == pytest.approx({5: 0.175, 10: 0.0})
    assert switch_floors(tuning.drop(columns="mode_switch_rate")) == {}


def test_fresh_rows_pair_the_agent_and_the_strongest_on_noise_disjoint_from_the_used_seeds():
    rows = fresh_rows({4: AGENT}, {4: WINNER}, {4: [WINNER]}, KWARGS, range(500, 503), range(0, 10), [], ipndm)
    assert set(rows["method"]) == {"agent", "strongest"} and set(rows["seed"]) == {500, 501, 502}
    noise = rows.groupby("method")["noise_seed"].apply(sorted)
    assert noise["agent"] == noise["strongest"]
    with pytest.raises(ValueError, match="disjoint"):
        fresh_rows({4: AGENT}, {4: WINNER}, {4: [WINNER]}, KWARGS, range(500, 503), range(502, 510), [], ipndm)
    with pytest.raises(ValueError, match="disjoint"):  # the same noise seeds as rows already used
        fresh_rows({4: AGENT}, {4: WINNER}, {4: [WINNER]}, KWARGS, range(500, 503), [], noise["agent"][:1], ipndm)


def test_an_off_env_winner_runs_off_the_env_on_the_agents_noise():
    rows = fresh_rows({4: AGENT}, {4: "ipndm3:edm"}, {4: [WINNER]}, KWARGS, range(500, 502), [], [], ipndm)
    best = rows[rows["method"] == "strongest"]
    assert set(best["controller"]) == {"ipndm3:edm"} and len(best) == 2
    assert sorted(best["noise_seed"]) == sorted(rows.loc[rows["method"] == "agent", "noise_seed"])
    assert fresh_summary(rows)["strongest_method"].iloc[0] == "ipndm3:edm"
