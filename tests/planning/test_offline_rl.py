"""Behaviour cloning and IQL: losses, IQL's expectile against its closed form, and runs through ``evaluate``."""

import re

import numpy as np
import pytest
import torch

import adaptstep  # noqa: F401
from adaptstep.evaluation import evaluate
from adaptstep.planning import read_d4rl
from adaptstep.planning.datasets import OfflineDataset, write_d4rl
from adaptstep.planning.d4rl_maze import make_d4rl_maze_dataset
from adaptstep.planning.offline_rl import expectile_loss, goal_rewards, train_bc, train_iql
from adaptstep.planning.planners import load_planner
from adaptstep.planning.train import train_planner


def _bandit(n: int = 4000, seed: int = 0) -> OfflineDataset:
    """One-step episodes: a random state, action ±0.5 at random, reward 1 for +0.5 (so the data is 50/50)."""
    rng = np.random.default_rng(seed)
    states = rng.normal(size=(n, 3)).astype(np.float32)
    actions = rng.choice([-0.5, 0.5], size=(n, 1)).astype(np.float32)
    return OfflineDataset(observations=states, actions=actions, rewards=(actions[:, 0] > 0).astype(np.float32),
                          terminals=np.ones(n, bool), next_observations=states,
                          infos={"goal": states[:, :2]})


def test_expectile_loss_is_the_asymmetric_square():
    diff = torch.tensor([-2.0, -0.5, 0.0, 1.0, 3.0])
    expected = np.mean([0.3 * 4.0, 0.3 * 0.25, 0.0, 0.7 * 1.0, 0.7 * 9.0])
    assert expectile_loss(diff, 0.7).item() == pytest.approx(expected)
    assert expectile_loss(diff, 0.5).item() == pytest.approx(0.5 * diff.pow(2).mean().item())


@pytest.mark.parametrize("tau", [0.5, 0.7, 0.9])
def test_minimising_the_expectile_loss_finds_the_closed_form_expectile(tau):
    x = torch.tensor([0.0, 1.0, 2.0, 10.0])
    # The τ-expectile m solves τ·Σ_{x>m}(x − m) = (1 − τ)·Σ_{x<m}(m − x); for m between 2 and 10:
    # τ(10 − m) = (1 − τ)(3m − 3)  →  m = (10τ + 3(1 − τ)) / (τ + 3(1 − τ)).
    closed_form = (10 * tau + 3 * (1 - tau)) / (tau + 3 * (1 - tau))
    m = torch.zeros((), requires_grad=True)
    optimizer = torch.optim.Adam([m], lr=0.05)
    for _ in range(3000):
        optimizer.zero_grad()
        expectile_loss(x - m, tau).backward()
        optimizer.step()
    assert m.item() == pytest.approx(closed_form, abs=1e-2)


def test_bc_loss_falls_and_it_clones_a_goal_conditioned_action():
    dataset = _bandit()
    dataset.actions = (0.8 * np.tanh(dataset.observations[:, :1] - dataset.infos["goal"][:, 1:])).astype(np.float32)
    policy, metadata = train_bc(dataset, goal=True, steps=600, batch_size=128, hidden=(64, 64))
    assert np.mean(metadata["losses"][-10:]) < 0.1 * metadata["losses"][0]
    inputs = torch.as_tensor(np.concatenate([dataset.observations, dataset.infos["goal"]], 1)[:500])
    np.testing.assert_allclose(policy(inputs).detach().numpy(), dataset.actions[:500], atol=0.15)


def test_iql_losses_fall_and_its_policy_picks_the_rewarded_action():
    dataset = _bandit()
    policy, metadata = train_iql(dataset, steps=600, batch_size=128, hidden=(64, 64), beta=3.0)
    losses = metadata["losses"]
    assert np.mean(losses["q"][-10:]) < 0.5 * losses["q"][0]
    assert np.mean(losses["policy"][-10:]) < losses["policy"][0]
    assert policy(torch.as_tensor(dataset.observations[:500])).mean().item() > 0.3  # BC's would be ≈ 0


def _two_step_goals(pairs: int = 1500, seed: int = 0) -> OfflineDataset:
    """From near (0, 0) a step of ±0.5 lands near (±1, 0); the goal, (1, 0) or (−1, 0), is reached at the second state.

    Each pair of transitions shares a goal drawn at random, so the data's actions ignore it (BC would give ≈ 0).
    """
    rng = np.random.default_rng(seed)
    sign, goal_sign = rng.choice([-1.0, 1.0], pairs), rng.choice([-1.0, 1.0], pairs)
    start = rng.normal(0.0, 0.05, (pairs, 2))
    after = np.stack([sign, np.zeros(pairs)], 1) + rng.normal(0.0, 0.05, (pairs, 2))
    goals = np.stack([goal_sign, np.zeros(pairs)], 1)
    interleave = lambda first, second: np.stack([first, second], 1).reshape(2 * pairs, *np.shape(first)[1:])
    actions = interleave(0.5 * sign[:, None], rng.uniform(-1, 1, (pairs, 1)))
    return OfflineDataset(observations=interleave(start, after).astype(np.float32), actions=actions.astype(np.float32),
                          rewards=np.zeros(2 * pairs, np.float32), terminals=np.tile([False, True], pairs),
                          next_observations=interleave(after, after).astype(np.float32),
                          infos={"goal": interleave(goals, goals).astype(np.float32)})


def test_goal_rewards_relabel_each_transition_to_its_own_goal():
    dataset = _two_step_goals(4)
    expected = [0.0 if i % 2 == 0 else float(np.linalg.norm(dataset.observations[i] - dataset.infos["goal"][i]) <= 0.5)
                for i in range(8)]
    np.testing.assert_array_equal(goal_rewards(dataset), expected)


def test_goal_conditioned_iql_steps_toward_the_goal_it_is_given():
    dataset = _two_step_goals()
    policy, metadata = train_iql(dataset, goal=True, steps=1500, batch_size=128, hidden=(64, 64), beta=3.0)
    assert policy.goal_dim == 2 and metadata["goal_conditioned"]
    start = np.zeros((1, 2), np.float32)
    toward = [policy(torch.as_tensor(np.concatenate([start, [[side, 0.0]]], 1), dtype=torch.float32)).item()
              for side in (1.0, -1.0)]
    assert toward[0] > 0.2 and toward[1] < -0.2, toward
    state_only, _ = train_iql(dataset, steps=50, batch_size=128, hidden=(64, 64))
    assert state_only.goal_dim == 0


def test_bad_iql_settings_are_named():
    with pytest.raises(ValueError, match="tau must be in"):
        train_iql(_bandit(10), steps=1, tau=1.0)
    with pytest.raises(ValueError, match="beta must be > 0"):
        train_iql(_bandit(10), steps=1, beta=0.0)


@pytest.fixture(scope="module")
def umaze_data(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "umaze-v1.hdf5"
    write_d4rl(make_d4rl_maze_dataset("maze2d-umaze-v1", 3000, seed=1), path)
    return path


@pytest.mark.parametrize("kind", ["bc", "iql"])
def test_each_baseline_runs_through_evaluate_on_the_planners_seeds(kind, umaze_data, tmp_path):
    out = train_planner(kind, umaze_data, "maze2d-umaze-v1", tmp_path / f"{kind}.pt", steps=50, progress=False)
    planner = load_planner(out)
    assert planner.metadata["task"] == "maze2d-umaze-v1" and planner.metadata["transitions"] == 3000
    assert planner.metadata["goal_conditioned"] == (kind == "bc")
    env_kwargs = {"planner": str(out), "task": "maze2d-umaze-v1", "replan_every": 1, "max_budget": 1}
    table = evaluate("adaptstep/PlannerBudget-v0", ["fixed:budget=1"], episodes=2, seed=10_000,
                     env_kwargs=env_kwargs, progress=False)
    assert list(table["seed"]) == [10_000, 10_001]
    assert np.all(table["cost"] == 300)  # one policy evaluation per control step
    assert np.all(np.isfinite(table["normalized_score"]))
    assert read_d4rl(umaze_data).metadata["procedure"] == "d4rl"


def test_bench_offline_reports_the_baselines_with_bootstrap_cis_and_the_protocol(umaze_data, tmp_path):
    from adaptstep.cli import main

    bc = train_planner("bc", umaze_data, "maze2d-umaze-v1", tmp_path / "bc.pt", steps=20, progress=False)
    diffuser = train_planner("diffuser", umaze_data, "maze2d-umaze-v1", tmp_path / "d.pt", horizon=16, steps=2,
                             batch_size=4, dim=8, device="cpu", progress=False)
    report, plot = tmp_path / "BENCHMARKS.md", tmp_path / "offline.png"
    main(["bench", "offline", "--task", "maze2d-umaze-v1", "--planner", f"bc={bc}", "--budget", "bc=1", "--replan",
          "bc=1", "--planner", f"d={diffuser}", "--budget", "d=2", "--replan", "d=0", "--option", "d:follow=states",
          "--episodes", "3", "--out", str(report), "--plot", str(plot)])
    text = report.read_text()
    assert re.search(r"^\| d, k = 2 \| \S+ ± \S+ \| once \| 2 \| 1 \|", text, re.MULTILINE)  # Diffuser's protocol
    assert "follow = states" in text
    assert "D4RL's maze2d protocol: the goal fixed at the maze's G cell" in text
    for row in ("| waypoint controller (data) |", "| random actions |", "| bc, k = 1 |"):
        line = next(line for line in text.splitlines() if line.startswith(row))
        assert re.search(r"\[-?[\d.]+, -?[\d.]+\] \|$", line)  # the bootstrap CI closes every row
    assert "a reactive policy (behaviour cloning (MSE), state and goal)" in text


def test_iql_records_its_settings_and_the_bench_line_names_them(umaze_data, tmp_path):
    from adaptstep.planning.bench import planner_description

    out = train_planner("iql", umaze_data, "maze2d-umaze-v1", tmp_path / "iql.pt", steps=5, tau=0.9, beta=10.0,
                        progress=False)
    planner = load_planner(out)
    assert (planner.metadata["tau"], planner.metadata["beta"]) == (0.9, 10.0)
    assert "(IQL (Kostrikov et al. 2021), state only, τ = 0.9, β = 10.0)" in planner_description("iql", str(out),
                                                                                               planner, {})


def test_state_only_bc_ignores_the_goal_and_only_bc_takes_it(umaze_data, tmp_path):
    out = train_planner("bc", umaze_data, "maze2d-umaze-v1", tmp_path / "bc.pt", steps=5, state_only=True,
                        progress=False)
    planner = load_planner(out)
    assert planner.policy.goal_dim == 0 and not planner.metadata["goal_conditioned"]
    state = np.zeros(4)
    assert np.array_equal(planner.plan(state, np.zeros(2), 1, 0).actions, planner.plan(state, np.ones(2), 1, 0).actions)
    with pytest.raises(ValueError, match="state_only applies to the bc planner only"):
        train_planner("iql", umaze_data, "maze2d-umaze-v1", tmp_path / "iql.pt", steps=5, state_only=True)


def test_the_bootstrap_ci_brackets_the_mean():
    from adaptstep.planning.bench import bootstrap_ci

    values = np.random.default_rng(0).normal(10.0, 2.0, size=400)
    low, high = bootstrap_ci(values)
    assert low < values.mean() < high and high - low == pytest.approx(2 * 1.96 * 2.0 / 20, rel=0.2)


def test_goal_visits_split_the_score_into_arriving_and_staying(umaze_data, tmp_path):
    from adaptstep.planning.goal_visits import goal_visits

    bc = load_planner(train_planner("bc", umaze_data, "maze2d-umaze-v1", tmp_path / "bc.pt", steps=20, progress=False))
    table = goal_visits(bc, "maze2d-umaze-v1", [10_000, 10_001, 10_002])
    assert list(table["seed"]) == [10_000, 10_001, 10_002]
    for row in table.itertuples():  # the score is the steps within 0.5 from the first arrival on
        expected = 0.0 if np.isnan(row.first_step) else row.stay_share * (300 - row.first_step)
        assert row.score == pytest.approx(expected)
    with pytest.raises(ValueError, match="task must be one of"):
        goal_visits(bc, "hopper-medium", [0])
    with pytest.raises(ValueError, match="replan_every must be an int >= 0"):
        goal_visits(bc, "maze2d-umaze-v1", [0], replan_every=-1)
    with pytest.raises(ValueError, match="budget must be an int >= 1"):
        goal_visits(bc, "maze2d-umaze-v1", [0], budget=0)


def test_goal_visits_run_a_diffusion_planner_between_plans_as_the_bench_does(umaze_data, tmp_path, monkeypatch):
    from adaptstep.planning.goal_visits import goal_visits

    path = train_planner("trajectory-diffuser", umaze_data, "maze2d-umaze-v1", tmp_path / "td.pt", horizon=16,
                         steps=2, batch_size=4, dim=8, device="cpu", progress=False)
    planner, calls = load_planner(path, device="cpu", samples=2), []
    plan, act = planner.plan, planner.act
    monkeypatch.setattr(planner, "plan", lambda *args: calls.append("plan") or plan(*args))
    monkeypatch.setattr(planner, "act", lambda p, s, index: calls.append(index) or act(p, s, index))
    goal_visits(planner, "maze2d-umaze-v1", [10_000], replan_every=8)
    assert calls[:10] == ["plan", 0, 1, 2, 3, 4, 5, 6, 7, "plan"] and calls.count("plan") == 300 // 8 + 1
    calls.clear()
    goal_visits(planner, "maze2d-umaze-v1", [10_000], replan_every=0, budget=2)  # once; past the horizon its end
    assert calls[:3] == ["plan", 0, 1] and calls.count("plan") == 1 and calls[-1] == 15 and len(calls) == 301


def test_train_planner_makes_goal_conditioned_iql_only_where_asked(umaze_data, tmp_path):
    out = train_planner("iql", umaze_data, "maze2d-umaze-v1", tmp_path / "gciql.pt", steps=20, goal_conditioned=True,
                        progress=False)
    planner = load_planner(out)
    assert planner.metadata["goal_conditioned"] and planner.policy.goal_dim == 2
    with pytest.raises(ValueError, match="goal_conditioned applies to the iql planner only"):
        train_planner("bc", umaze_data, "maze2d-umaze-v1", tmp_path / "x.pt", steps=2, goal_conditioned=True)
    with pytest.raises(ValueError, match="goal_conditioned needs a task with goals"):
        train_planner("iql", umaze_data, "hopper-medium", tmp_path / "x.pt", steps=2, goal_conditioned=True)


def test_bench_refuses_a_name_given_twice():
    """Two --agent (or --planner) items with one name would silently drop the first."""
    from adaptstep.planning.bench import _pairs

    assert _pairs(["a=1", "b=2"], "--agent") == {"a": "1", "b": "2"}
    with pytest.raises(SystemExit, match="--agent names 'a' twice"):
        _pairs(["a=1", "a=2"], "--agent")
    with pytest.raises(SystemExit, match="--planner must look like NAME=VALUE"):
        _pairs(["a"], "--planner")
