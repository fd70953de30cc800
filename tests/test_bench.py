"""`adaptstep bench ...` on tiny settings: each runs end to end and writes its section atomically."""

import math
import os
import re
from pathlib import Path

import pandas as pd
import pytest
import yaml

from adaptstep.agents.training import train
from adaptstep.cli import main
from adaptstep.specs import env_task_spec
from adaptstep.threebody import YEAR

ENV_ID = "adaptstep/ThreeBody-v0"


def test_bench_threebody_writes_its_section(tmp_path):
    config = tmp_path / "ppo.yml"
    config.write_text(yaml.safe_dump({ENV_ID: {"n_timesteps": 32, "policy": "MlpPolicy", "n_steps": 16,
                                               "batch_size": 16, "n_epochs": 1}}))
    model = train(ENV_ID, "ppo", tmp_path / "agent", config=config, progress_bar=False)
    report = tmp_path / "BENCHMARKS.md"
    report.write_text("# Benchmarks\n\nkept text\n")
    extra = ["whole:ias15,epsilon=3e-6", "whole:ias15,epsilon=1e-5"]  # the second is the spec's: not twice
    argv = ["bench", "threebody", "--model", str(model), "--episodes", "2", "--env-kwarg", "t_end=2",
            "--out", str(report), "--throughput-t-end", "2", "--oracle-mu", "1e-9", "--ias15-oracle-mu", "1e-11",
            "--envelope-extra", *extra, "--resamples", "20"]
    main(argv)
    first = report.read_text()
    assert first.startswith("# Benchmarks\n\nkept text\n")
    assert first.count("<!-- bench:threebody -->") == 1
    for heading in ("Integrator throughput", "Agents vs every classical row", "oracle:mu=1e-09",
                    "oracle:mu=1e-11@backend=rebound-ias15", "Against the union frontier of the classical rows",
                    "Against the fixed-η curve alone", "What changing η between intervals costs"):
        assert heading in first
    baselines = env_task_spec(ENV_ID)["baselines"]
    assert f"lower envelope of all {len(baselines) + 1} classical rows" in first
    headline = re.search(r"needs \*\*([\d.]+)×\*\* \(95% CI ([\d.]+)–([\d.]+)\) the force evaluations of the "
                         r"envelope, whose strongest baseline there is \*\*`([^`]+)`\*\*", first)
    assert headline, "the headline names the ratio, its CI and the strongest baseline"
    assert float(headline.group(2)) <= float(headline.group(1)) <= float(headline.group(3))
    assert "Target (≤ 0.7× the envelope's force evaluations" in first
    assert re.search(rf"^\| {re.escape(str(model))} \| [^|]+ \| [^|]+ \| [\d.e+-]+ \([\d.e+-]+–[\d.e+-]+\) \|", first,
                     re.MULTILINE)  # the agent's row of the envelope table, a ratio with its CI
    assert first.index("## Three-body") < first.index("Command: `adaptstep bench threebody") < first.index(
        "### Integrator throughput")
    table = pd.read_csv(tmp_path / "benchmarks" / "threebody.csv")  # the harness rows, beside the figure
    intervals = math.ceil(2 / (0.1 * YEAR))  # t_end = 2 in intervals of 0.1 yr
    controllers = 5 + len(baselines)  # the agent, its IAS15 transfer, 2 oracles, 1 extra envelope row
    assert len(table) == 2 * controllers and (table["time"] >= 2).all() and (table["steps"] <= intervals).all()
    assert (tmp_path / "benchmarks" / "threebody.png").is_file()
    assert "![Pareto plot](benchmarks/threebody.png)" in first and "`benchmarks/threebody.csv`" in first
    assert "Env overhead" not in first and "`threebody-speed` section" in first  # timings live in --speed only
    main(argv)  # a second run replaces the section instead of appending one
    assert report.read_text().count("<!-- bench:threebody -->") == 1


def test_bench_sampler_writes_its_section(tmp_path):
    sampler_env = "adaptstep/DiffusionSampler-v0"
    config = tmp_path / "ppo.yml"
    config.write_text(yaml.safe_dump({sampler_env: {
        "n_timesteps": 32, "policy": "MlpPolicy", "n_steps": 16, "batch_size": 16, "n_epochs": 1,
        "env_kwargs": {"model": "gmm-2d", "nfe": 4, "batch_size": 8, "noise_pool": 2, "choose_order": True}}}))
    model = train(sampler_env, "ppo", tmp_path / "agent", config=config, progress_bar=False)
    report = tmp_path / "BENCHMARKS.md"
    report.write_text("# Benchmarks\n\nkept text\n")
    main(["bench", "sampler", "--model", "gmm-2d", "--nfe", "2", "4", "--episodes", "2", "--batch-size", "8",
          "--agent", f"4={model}", "--search", "dp", "--search-option", "batches=1", "--tuning-episodes", "1",
          "--fresh-episodes", "2", "--fresh-seed", "20000", "--out", str(report)])
    text = report.read_text()
    assert text.startswith("# Benchmarks\n\nkept text\n") and text.count("<!-- bench:sampler-gmm-2d -->") == 1
    for expected in ("| method | NFE 2 | NFE 4 |", "search:dp,solver=dpmpp3m", "adaptive-dpm-solver-23", "edm-heun",
                     "| 4 | agent |", "ratio_to_strongest", "Strongest baseline per NFE", "Mode-switch rate",
                     "tuning RMSE", "Per-batch medians", "Fresh noise", "agent / strongest [paired 95% CI]"):
        assert expected in text
    assert (tmp_path / "benchmarks" / "sampler-gmm-2d.png").is_file()
    table = pd.read_csv(tmp_path / "benchmarks" / "sampler-gmm-2d.csv")
    fresh = table[table["noise"] == "fresh"]  # the agent and the NFE-4 winner on seeds 20000-20001, kept apart
    assert set(fresh["seed"]) == {20_000, 20_001} and fresh.groupby("method").size().to_dict().get("agent") == 2
    assert fresh["strongest"].sum() == 2 and set(fresh["cost"]) == {4}
    table = table[table["noise"] == "held-out"]
    assert "sample_errors" not in table and {"mode_switch_rate", "strongest"} <= set(table.columns)
    assert table.loc[table["strongest"], "cost"].value_counts().to_dict() == {2: 2, 4: 2}  # one winner per NFE
    agent = table[table["method"] == "agent"]
    assert list(agent["controller"]) == [str(model)] * 2 and (agent["cost"] == 4).all()
    off_env = table[table["method"] == "edm-heun"]  # on the noise of the harness rows' seeds
    assert list(off_env["seed"]) == [10_000, 10_000, 10_001, 10_001] and off_env["steps"].isna().all()
    harness_noise = table[table["steps"].notna()].groupby("seed")["noise_seed"].unique()
    assert all(len(noise) == 1 for noise in harness_noise)
    assert dict(off_env.groupby("seed")["noise_seed"].first()) == {s: n[0] for s, n in harness_noise.items()}
    ipndm = table[table["method"].str.startswith("ipndm")]  # orders 3 and 4 on the 4 hand schedules, 1 NFE per step
    assert len(ipndm) == 2 * 4 * 2 * 2 and set(ipndm["cost"]) == {2, 4}
    assert "| 4 | ipndm3:edm |" in text  # in the ratios to the strongest


def test_bench_budget_writes_its_section(tmp_path):
    budget_env = "adaptstep/BudgetForcing-v0"
    config = tmp_path / "ppo.yml"
    config.write_text(yaml.safe_dump({budget_env: {
        "n_timesteps": 32, "policy": "MlpPolicy", "n_steps": 16, "batch_size": 16, "n_epochs": 1,
        "env_kwargs": {"budget": 30, "action": "log_share", "early_accept": False}}}))
    model = train(budget_env, "ppo", tmp_path / "agent", config=config, progress_bar=False)
    report, plot = tmp_path / "BENCHMARKS.md", tmp_path / "budget.png"
    argv = ["bench", "budget", "--budgets", "30", "44", "--episodes", "4", "--ablation-budgets", "30",
            "--tuning-episodes", "3",
            "--agent", f"30={model}", "--out", str(report), "--plot", str(plot)]
    main(argv)
    text = report.read_text()
    assert text.count("<!-- bench:budget-gmm-2d-compositional -->") == 1
    for row in ("| BoN |", "| SoP |", "| SMC diff |", "| SVDD ×2 |", "| linear ×2 |", "| RBF ×2 |", "| RBF ×1 |",
                "| agent |", "| RBF ×2 vp-sde |", "| SVDD ×2 ode |", "Orderings of Kim et al.", "strongest rule",
                "wrong mode", "Each agent against the strongest rule"):
        assert row in text
    assert plot.is_file()
    table = pd.read_csv(plot.with_suffix(".csv"))  # one row per generation, the agent's from the harness
    held = table[~table["ablation"]]
    assert set(held.groupby(["method", "budget"]).size()) == {4} and (table["cost"] <= table["budget"]).all()
    assert {"BoN", "RBF ×1", "agent"} <= set(held.method) and table["wrong_mode"].isin([0.0, 1.0]).all()
    assert len(table[table["ablation"]]) == 4 * 3 * 5
    assert table.loc[table["method"] == "agent", "steps"].notna().all()


def test_bench_offline_writes_its_section(tmp_path):
    import torch

    from adaptstep.planning.diffuser import Diffuser, DiffuserConfig
    from adaptstep.planning.planners import save_planner

    torch.manual_seed(0)
    planner = save_planner(Diffuser(DiffuserConfig(4, 2, horizon=8, dim=8, goal_dims=2), torch.zeros(6),
                                    torch.ones(6)), tmp_path / "planner.pt")  # untrained: the pipeline only
    planner_env = "adaptstep/PlannerBudget-v0"
    config = tmp_path / "ppo.yml"
    config.write_text(yaml.safe_dump({planner_env: {
        "n_timesteps": 16, "policy": "MlpPolicy", "n_steps": 16, "batch_size": 16, "n_epochs": 1,
        "env_kwargs": {"planner": str(planner), "max_budget": 2, "replan_every": 7}}}))
    model = train(planner_env, "ppo", tmp_path / "agent", config=config, progress_bar=False)
    report, plot = tmp_path / "BENCHMARKS.md", tmp_path / "offline.png"
    main(["bench", "offline", "--planner", f"diffuser={planner}", "--budget", "diffuser=1,2", "--agent",
          f"diffuser={model}", "--episodes", "2", "--replan-every", "5", "--replan", "diffuser=7", "--out", str(report),
          "--plot", str(plot)])
    text = report.read_text()
    assert text.count("<!-- bench:offline-maze2d-umaze -->") == 1
    for row in ("| waypoint controller (data) |", "| diffuser, k = 1 |", "| diffuser, k = 2 |",
                "| diffuser + learned budget |", "not comparable"):
        assert row in text
    assert re.search(r"\| diffuser, k = 2 \| [^|]+ \| 7 \|", text)  # the planner's own replanning period
    assert plot.is_file()
    table = pd.read_csv(plot.with_suffix(".csv"))
    assert list(table.groupby("method", sort=False)["replan_every"].first()) == [0, 7, 7, 7]
    fixed = table[table["method"] == "diffuser, k = 2"]
    assert (fixed["cost"] == 2 * fixed["plans"]).all() and (fixed["plans"] > 0).all()


def test_bench_offline_runs_a_zoo_planner_and_names_its_data_command(tmp_path):
    report = tmp_path / "BENCHMARKS.md"
    main(["bench", "offline", "--planner", "td=zoo:planner-maze2d-umaze", "--budget", "td=1", "--episodes", "1",
          "--out", str(report), "--plot", str(tmp_path / "offline.png")])
    text = report.read_text()
    assert "| td, k = 1 |" in text
    assert "- td: `zoo:planner-maze2d-umaze`, horizon 32" in text
    assert "of `adaptstep data make maze2d-umaze --transitions 100000 --seed 0` (" in text  # not the scratch file


def test_section_figure_lies_beside_its_markdown_file(tmp_path):
    from adaptstep.core.report import section_figure

    assert section_figure(tmp_path / "logs" / "x.md", "robot-reacher") == (
        tmp_path / "logs" / "benchmarks" / "robot-reacher.png", "benchmarks/robot-reacher.png")
    assert section_figure("BENCHMARKS.md", "robot-reacher") == (Path("benchmarks/robot-reacher.png"),
                                                                "benchmarks/robot-reacher.png")
    assert section_figure(tmp_path / "logs" / "x.md", "s", tmp_path / "plots" / "p.png") == (
        tmp_path / "plots" / "p.png", "../plots/p.png")


def test_bench_robot_writes_its_section(tmp_path, monkeypatch):
    from adaptstep.policies.demos import make_demos, save_demos
    from adaptstep.policies.dual_system import load_dual_system
    from adaptstep.policies.train import train_robot_policy

    demos = save_demos(make_demos("reacher", episodes=2, image_size=32, seed=0), tmp_path / "demos.hdf5")
    tiny = dict(steps=3, batch_size=4, device="cpu", progress=False)  # untrained: the pipeline only
    baseline = train_robot_policy("diffusion-policy", demos, tmp_path / "dp.pt", **tiny)
    dual = train_robot_policy("dual-system", demos, tmp_path / "dual.pt", video_steps=2, video_config={"width": 8},
                              **tiny)
    config = tmp_path / "ppo.yml"
    config.write_text(yaml.safe_dump({"adaptstep/DualSystem-v0": {
        "n_timesteps": 16, "policy": "MlpPolicy", "n_steps": 16, "batch_size": 16, "n_epochs": 1,
        "env_kwargs": {"policy": str(dual), "system2_cost": 5.0, "asynchronous": True}}}))
    model = train("adaptstep/DualSystem-v0", "ppo", tmp_path / "agent", config=config, progress_bar=False)
    report, plot = tmp_path / "BENCHMARKS.md", tmp_path / "robot.png"
    main(["bench", "robot", "--diffusion-policy", str(baseline), "--dual-system", str(dual), "--refresh", "1,4",
          "--controller", "refresh:every=20,change=0.9@asynchronous=true", "--agent", str(model), "--episodes", "2",
          "--device", "cpu", "--out", str(report), "--plot", str(plot)])
    text = report.read_text()
    assert text.count("<!-- bench:robot-reacher -->") == 1 and "policies on one CPU thread" in text
    for row in ("| Diffusion Policy |", "| dual system, k = 1 |", "| dual system, k = 4 |",
                "| dual system async, k = 1 |", "| dual system async, k = 4 |",
                "| dual system async, refresh:every=20,change=0.9 |",
                "| dual system async, learned refresh (agent) |", "System-2 call costs"):  # run as trained
        assert row in text
    for runner in ("", " async"):  # success, its bootstrap interval, final distance, 13 calls, 4 refreshes
        assert re.search(rf"\| dual system{runner}, k = 4 \| [^|]+ \| \[[\d.]+, [\d.]+\] \| [^|]+ \| 13 \| 4 \|",
                         text)
    assert re.search(r"\| dual system async, refresh:every=20,change=0.9 \|(?: [^|]+ \|){3} 13 \| 1 \|", text)
    assert plot.is_file()
    table = pd.read_csv(plot.with_suffix(".csv"))  # Diffusion Policy off the env, the rest from the harness
    rows = table.groupby("method", sort=False)
    assert rows["steps"].apply(lambda steps: steps.isna().all()).to_dict() == {
        method: method == "Diffusion Policy" for method in rows.groups}
    assert (table["policy_seconds"] > 0).all() and (table["calls"] == 13).all()
    own_steps = load_dual_system(dual, device="cpu").config.sampling_steps
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")  # without --plot the figure goes beside --out, not into the cwd
    main(["bench", "robot", "--dual-system", str(dual), "--refresh", "4", "--runner", "sync", "--solver-steps",
          f"1,{own_steps}", "--episodes", "1", "--device", "cpu", "--out", str(report), "--section", "robot-steps"])
    assert "<!-- bench:robot-reacher -->" in report.read_text()  # the first run's section stays
    assert (tmp_path / "benchmarks" / "robot-steps.png").is_file() and not any((tmp_path / "elsewhere").iterdir())
    assert "![success vs compute](benchmarks/robot-steps.png)" in report.read_text()
    compute = {int(steps): float(cost) for steps, cost in re.findall(
        r"\| dual system, k = 4, (\d+) solver steps \|(?: [^|]+ \|){5} ([^|]+) \|", report.read_text())}
    assert compute[own_steps] - compute[1] == pytest.approx(13 * (1 - 1 / own_steps), abs=0.02)  # S1 calls


def test_bench_offline_workers_give_the_sequential_rows(tmp_path):
    import torch

    from adaptstep.core.executors import make_executor, use_executor
    from adaptstep.planning.bench import run_jobs
    from adaptstep.planning.diffuser import Diffuser, DiffuserConfig
    from adaptstep.planning.planners import save_planner

    torch.manual_seed(0)
    planner = save_planner(Diffuser(DiffuserConfig(4, 2, horizon=8, dim=8, goal_dims=2), torch.zeros(6),
                                    torch.ones(6)), tmp_path / "planner.pt")
    kwargs = {"planner": str(planner), "planner_options": {"samples": 2}, "task": "maze2d-umaze", "replan_every": 5,
              "max_budget": 2}
    jobs = [(f"fixed:budget={k}", kwargs, f"diffuser, k = {k}") for k in (1, 2)]
    columns = ["method", "seed", "normalized_score", "cost", "plans"]
    sequential = run_jobs(jobs, 3, 2)[columns]
    with use_executor(make_executor("process", 2)):
        parallel = run_jobs(jobs, 3, 2)[columns]
    assert list(sequential["method"]) == ["diffuser, k = 1"] * 2 + ["diffuser, k = 2"] * 2
    pd.testing.assert_frame_equal(sequential, parallel)


def test_bench_offline_rejects_more_workers_than_cores(tmp_path, capsys):
    with pytest.raises(SystemExit):
        main(["bench", "offline", "--planner", f"diffuser={tmp_path / 'missing.pt'}", "--workers",
              str((os.cpu_count() or 1) + 1), "--out", str(tmp_path / "BENCHMARKS.md")])
    assert "--workers must be an int in" in capsys.readouterr().err


def test_bench_robot_names_a_bad_device_or_controller(tmp_path, capsys):
    import torch

    arguments = ["bench", "robot", "--dual-system", str(tmp_path / "missing.pt"), "--out", str(tmp_path / "B.md")]
    with pytest.raises(SystemExit):
        main([*arguments, "--controller", "refresh:every=0"])
    assert "controller 'refresh:every=0': every must be an integer >= 1, got 0" in capsys.readouterr().err
    for option in ("--refresh", "--solver-steps"):
        for bad in ("0,2", "a"):
            with pytest.raises(SystemExit):
                main([*arguments, option, bad])
            assert f"argument {option}: must list ints >= 1 such as 2,5, got '{bad}'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*arguments, "--device", "tpu"])
    assert "device must be 'auto' or a torch device such as 'cpu' or 'cuda', got 'tpu'" in capsys.readouterr().err
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit, match="--device cuda needs a CUDA GPU"):
            main([*arguments, "--device", "cuda"])


def test_bench_scale_times_fresh_evaluates_and_checks_their_rows(tmp_path, capsys):
    report = tmp_path / "BENCHMARKS.md"
    main(["bench", "scale", "--env", "adaptstep/ThreeBody-v0", "--controller", "fixed:eta=0.03", "--controller",
          "aarseth:eta=0.03", "--env-kwarg", "t_end=2", "--episodes", "3", "--seed", "5", "--rounds", "2",
          "--executors", "serial,process", "--out", str(report)])
    text = report.read_text()
    assert text.count("<!-- bench:scale -->") == 1 and "Command: `adaptstep bench scale" in text
    assert "local processes and Ray with 2 workers; 2 interleaved rounds" in text
    assert re.search(r"- process against serial: [\d.]+× faster \(median wall\); target ≥ 1\.7×: (met|not met)\.",
                     text)
    table = pd.read_csv(tmp_path / "benchmarks" / "scale.csv")
    assert list(table["executor"]) == ["serial", "process"] * 2 and list(table["round"]) == [1, 1, 2, 2]
    assert (table["error"].fillna("") == "").all() and table["identical to serial"].all()
    assert (table["wall s"] > 0).all() and (table["CPU s"] > 0).all()
    with pytest.raises(SystemExit):
        main(["bench", "scale", "--env", "adaptstep/ThreeBody-v0", "--controller", "fixed:eta=0.03",
              "--executors", "dask", "--out", str(report)])
    assert "--executors among ['serial', 'process', 'ray'], got 3 and 'dask'" in capsys.readouterr().err
