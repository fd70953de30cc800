"""The shared evaluation harness, controller specs, summaries and the Pareto plot."""

import numpy as np
import pandas as pd
import pytest

from adaptstep.agents import FixedParameter, parse_controller
from adaptstep.analysis import sweep_comparison
from adaptstep.evaluation import evaluate, pareto_mask, summarize
from adaptstep.plotting import controller_family, plot_pareto

ENV_ID = "adaptstep/ThreeBody-v0"
SHORT = {"t_end": 2.0, "interval": 1.0}


@pytest.fixture(scope="module")
def table():
    return evaluate(ENV_ID, ["fixed:eta=0.1", "fixed:eta=0.01", "ias15:epsilon=1e-9", "random"], episodes=3,
                    seed=5, env_kwargs=SHORT, progress=False)


def test_every_controller_runs_on_the_same_seeds(table):
    assert list(table.columns[:5]) == ["controller", "seed", "steps", "return", "cost"]
    assert {"energy_error", "wall_time", "failure"} <= set(table.columns)
    seeds = table.groupby("controller")["seed"].apply(list)
    assert all(seed_list == [5, 6, 7] for seed_list in seeds)
    assert (table["failure"] == "").all()


def test_baselines_match_direct_episodes(table):
    """The harness row equals an episode run by hand with the same seed and action."""
    import gymnasium as gym

    env = gym.make(ENV_ID, **SHORT)
    env.reset(seed=6)
    for _ in range(2):
        *_, info = env.step(np.array([-2.0], np.float32))
    row = table[(table["controller"] == "fixed:eta=0.01") & (table["seed"] == 6)].iloc[0]
    assert row["cost"] == info["cost"] and row["energy_error"] == info["energy_error"]


def test_ias15_baseline_runs_on_rebound(table):
    ias15 = table[table["controller"] == "ias15:epsilon=1e-9"]
    hermite = table[table["controller"] == "fixed:eta=0.1"]
    assert (ias15["energy_error"].to_numpy() < hermite["energy_error"].to_numpy()).all()


@pytest.mark.parametrize(("spec", "backend", "parameter"),
                         [("whole:ias15,epsilon=1e-7", "rebound-ias15", 1e-7),
                          ("whole:aarseth,eta=0.01", "hermite-aarseth", 0.01),
                          ("whole:leapfrog,dt=1e-3", "leapfrog", 1e-3)])
def test_whole_episode_baseline_row_is_one_backend_call(spec, backend, parameter):
    """A whole-episode baseline's row equals a direct call of the backend from t = 0 to t_end."""
    import gymnasium as gym

    from adaptstep.threebody import make_integrator, reference_initial_conditions

    rows = evaluate(ENV_ID, [spec], episodes=2, seed=5, env_kwargs=SHORT, progress=False)
    env = gym.make(ENV_ID, **SHORT)
    for row in rows.itertuples():
        system = reference_initial_conditions(env.reset(seed=row.seed)[1]["system_seed"])
        direct = make_integrator(backend, system)
        direct.evolve(SHORT["t_end"], parameter)
        assert row.steps == 1 and row.failure == "" and row.wall_time > 0
        assert row.cost == direct.force_evaluations
        assert row.energy_error == abs(direct.energy() - system.energy()) / abs(system.energy())


def test_whole_episode_spec_names_backend_and_parameter():
    assert parse_controller("whole:bs,epsilon=1e-10").env_overrides == {"backend": "rebound-bs"}
    assert parse_controller("aarseth:eta=0.01").env_overrides == {"backend": "hermite-aarseth"}
    with pytest.raises(ValueError, match="backend"):
        parse_controller("whole:rk4,dt=0.1")
    with pytest.raises(ValueError, match="eta=VALUE"):
        parse_controller("whole:hermite,epsilon=1e-5")


def test_summary_and_pareto(table):
    summary = summarize(table)
    assert list(summary.index) == ["fixed:eta=0.1", "fixed:eta=0.01", "ias15:epsilon=1e-9", "random"]
    row = summary.loc["fixed:eta=0.01"]
    costs = table[table["controller"] == "fixed:eta=0.01"]["cost"]
    assert row["cost_median"] == costs.median() and row["episodes"] == 3 and row["failures"] == 0
    assert row["cost_q25"] <= row["cost_median"] <= row["cost_q75"]
    assert summary["pareto"].dtype == bool


def test_pareto_mask_on_known_points():
    cost = np.array([1.0, 2.0, 3.0, 2.5])
    error = np.array([1.0, 0.5, 0.1, 0.6])
    assert pareto_mask(cost, error).tolist() == [True, True, True, False]


def test_sweep_comparison_interpolates_log_log():
    summary = pd.DataFrame({"cost_median": [10.0, 100.0, 1000.0, 50.0],
                            "energy_error_median": [1e-2, 1e-6, 1e-10, 1e-6]},
                           index=["a", "b", "c", "agent"])
    comparison = sweep_comparison(summary, "agent", ["a", "b", "c"], "energy_error")
    assert comparison["cost_ratio"] == pytest.approx(0.5)
    assert comparison["error_ratio"] == pytest.approx(10 ** (-2 - 4 * np.log10(5)) / 1e-6)


def test_plot_pareto_writes_png(table, tmp_path):
    path = plot_pareto(table, tmp_path / "front.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_controller_families():
    assert controller_family("fixed:eta=0.01") == "fixed"
    assert controller_family("ias15:epsilon=1e-9") == "ias15"
    assert controller_family("runs/a/model.zip@backend=leapfrog") == "runs/a/model.zip@backend=leapfrog"


def test_parse_controller_specs():
    fixed = parse_controller("fixed:eta=1e-3@backend=rebound-ias15,t_end=5")
    assert isinstance(fixed, FixedParameter)
    assert (fixed.parameter, fixed.value) == ("eta", 1e-3)
    assert fixed.env_overrides == {"backend": "rebound-ias15", "t_end": 5}
    assert parse_controller("ias15:epsilon=1e-7").env_overrides == {"backend": "rebound-ias15"}


def test_every_task_specs_baselines_parse():
    from adaptstep.specs import load_yaml, project_file

    specs = [load_yaml(path) for path in sorted(project_file("envs").glob("*.yaml"))]
    assert len(specs) >= 5
    for spec in specs:
        for baseline in spec.get("baselines", []):
            assert parse_controller(baseline).name == baseline


@pytest.mark.parametrize(
    ("spec", "match"),
    [("pid:k=1", "one of the baselines"), ("fixed", "exactly one"), ("fixed:eta", "exactly one PARAM=VALUE"),
     ("fixed:eta=0.1,=2", "KEY=VALUE"),
     ("missing/model.zip", "not found"), ("random:x=1", "no arguments")],
)
def test_bad_controller_specs(spec, match):
    with pytest.raises((ValueError, FileNotFoundError), match=match):
        parse_controller(spec)


def test_evaluate_rejects_bad_arguments():
    with pytest.raises(ValueError, match="episodes"):
        evaluate(ENV_ID, ["fixed:eta=0.01"], episodes=0)
    with pytest.raises(ValueError, match="distinct"):
        evaluate(ENV_ID, ["fixed:eta=0.01", "fixed:eta=0.01"], episodes=1, env_kwargs=SHORT, progress=False)
    with pytest.raises(ValueError, match="must be eta=VALUE"):
        evaluate(ENV_ID, ["fixed:dt=0.01"], episodes=1, env_kwargs=SHORT, progress=False)


def test_lookahead_oracle_trades_cost_for_accuracy_through_mu():
    """μ → 0 makes any energy drift unaffordable (round-off-level error); μ → ∞ makes only cost count (largest η)."""
    table = evaluate(ENV_ID, ["oracle:mu=1e-30", "oracle:mu=1e30,grid_size=4", "fixed:eta=0.1"],
                     episodes=1, seed=2, env_kwargs=SHORT, progress=False)
    rows = table.set_index("controller")
    assert rows.loc["oracle:mu=1e30,grid_size=4", "cost"] == rows.loc["fixed:eta=0.1", "cost"]
    assert rows.loc["oracle:mu=1e30,grid_size=4", "energy_error"] == rows.loc["fixed:eta=0.1", "energy_error"]
    assert rows.loc["oracle:mu=1e-30", "energy_error"] < 1e-12
    assert rows.loc["oracle:mu=1e-30", "cost"] > 10 * rows.loc["fixed:eta=0.1", "cost"]


def test_oracle_rejects_bad_arguments():
    with pytest.raises(ValueError, match="mu"):
        parse_controller("oracle:mu=-1")
    with pytest.raises(ValueError, match="grid_size"):
        parse_controller("oracle:mu=1e-9,grid_size=1")


def test_atomic_writes_replace_whole_files_with_the_usual_mode(tmp_path):
    import os

    from adaptstep.io import atomic_path, atomic_write_text

    target = tmp_path / "result.txt"
    atomic_write_text(target, "first")
    atomic_write_text(target, "second")
    assert target.read_text() == "second"
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask
    with pytest.raises(RuntimeError), atomic_path(target) as temporary:
        temporary.write_text("half")
        raise RuntimeError("crash while writing")
    assert target.read_text() == "second" and sorted(p.name for p in tmp_path.iterdir()) == ["result.txt"]
