"""adaptstep/BudgetForcing-v0: API contract, reproducibility, the hand rules on the env, bad input."""

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import adaptstep  # noqa: F401  (registers the env ids)
from adaptstep.evaluation import evaluate, summarize
from adaptstep.flow.methods import run_method
from adaptstep.flow.sampler import FlowSampler
from adaptstep.flow.tasks import make_task

ENV_ID = "adaptstep/BudgetForcing-v0"


def _episode(env, seed, actions):
    observation, _ = env.reset(seed=seed)
    trajectory, done, info = [observation], False, {}
    while not done:
        observation, reward, terminated, truncated, info = env.step(next(actions))
        trajectory.append(observation)
        done = terminated or truncated
    return np.array(trajectory), reward, info


@pytest.mark.parametrize("mode", ["quota", "stop"])
def test_check_env_passes(mode):
    check_env(gym.make(ENV_ID, mode=mode, budget=40).unwrapped, skip_render_check=True)


@pytest.mark.parametrize("mode", ["quota", "stop"])
def test_seed_reproduces_the_episode_and_respects_the_budget(mode):
    env = gym.make(ENV_ID, mode=mode, budget=60)
    runs = []
    for _ in range(2):
        rng = np.random.default_rng(5)
        actions = iter(lambda: env.action_space.sample() if mode == "quota" else int(rng.random() < 0.3), None)
        env.action_space.seed(5)
        runs.append(_episode(env, 11, actions))
    (first, reward, info), (second, reward2, info2) = runs
    np.testing.assert_array_equal(first, second)
    assert reward == reward2 and info["cost"] == info2["cost"] <= 60
    assert np.isfinite(info["reward"]) and np.isfinite(info["heldout_reward"])
    assert len(info["quotas"]) == 11 and min(info["quotas"]) >= 1


def test_hand_rules_on_the_env_reproduce_the_batched_methods():
    """budget:rbf / svdd / linear on the env (one chain) equal run_quota_method with chains=1 on the same seeds."""
    table = evaluate(ENV_ID, ["budget:rbf", "budget:svdd", "budget:linear"], episodes=6, seed=3,
                     env_kwargs={"budget": 80}, progress=False)
    task = make_task("gmm-2d-compositional", device="cpu")
    sampler = FlowSampler(task.flow, "linear-sde", steps=10)
    for rule in ("rbf", "svdd", "linear"):
        result = run_method(rule, sampler, task.verifier, 80, range(3, 9), chains=1)
        rows = table[table.controller == f"budget:{rule}"]
        np.testing.assert_allclose(rows["reward"].to_numpy(), result.reward)
        np.testing.assert_array_equal(rows["cost"].to_numpy(), result.nfe)
    summary = summarize(table)
    assert summary["pareto"].any()


@pytest.mark.parametrize("action", ["fraction", "log_share"])
def test_quota_action_maps_to_proposals(action):
    env = gym.make(ENV_ID, budget=100, early_accept=False, action=action)
    env.reset(seed=0)
    env.step(np.array([0.0], dtype=np.float32))  # the smallest quota is one proposal
    chains = env.unwrapped.chains
    assert chains.used[0, 0] == 1
    env.step(env.unwrapped.baseline_action(quota=17))
    assert chains.used[0, 1] == 17
    env.step(np.array([1.0], dtype=np.float32))  # everything but one NFE per later decision
    assert chains.remaining[0] == chains.decisions - chains.decision


def test_log_share_action_starts_from_the_uniform_share():
    env = gym.make(ENV_ID, budget=110, steps=10, action="log_share")
    env.reset(seed=0)
    env.step(np.array([0.5], dtype=np.float32))
    assert env.unwrapped.chains.used[0, 0] == 10  # 110 NFE over 11 decisions


def test_nan_verifier_falls_back_and_never_crashes(monkeypatch):
    env = gym.make(ENV_ID, budget=40).unwrapped
    function = env.task.verifier.function
    monkeypatch.setattr(env.task.verifier, "function",
                        lambda x0: function(x0).masked_fill(x0[:, 0] > 0, float("nan")))
    _, reward, info = _episode(env, 1, iter(lambda: np.array([0.3], dtype=np.float32), None))
    assert np.isfinite(reward)
    assert env.task.verifier.nan_count > 0


@pytest.mark.parametrize("kwargs, name", [
    ({"budget": 5}, "budget"), ({"task": "nope"}, "task"), ({"mode": "later"}, "mode"), ({"sde": "euler"}, "sde"),
    ({"nfe_weight": -1.0}, "nfe_weight"), ({"steps": 0}, "steps"), ({"nan_policy": "ignore"}, "nan_policy"),
    ({"action": "absolute"}, "action"),
])
def test_bad_input_names_the_parameter(kwargs, name):
    with pytest.raises(ValueError, match=name):
        gym.make(ENV_ID, **kwargs)


def test_unknown_budget_rule_is_rejected():
    with pytest.raises(ValueError, match="budget rule"):
        evaluate(ENV_ID, ["budget:greedy"], episodes=1, progress=False)


def test_a_trained_agent_is_evaluated_with_its_action_encoding(tmp_path):
    import yaml

    from adaptstep.agents.controllers import parse_controller
    from adaptstep.agents.training import train

    config = tmp_path / "ppo.yml"
    config.write_text(yaml.safe_dump({ENV_ID: {"n_timesteps": 32, "policy": "MlpPolicy", "n_steps": 16,
                                               "batch_size": 16, "n_epochs": 1,
                                               "env_kwargs": {"budget": 30, "action": "log_share",
                                                              "early_accept": False}}}))
    model = train(ENV_ID, "ppo", tmp_path / "agent", config=config, progress_bar=False)
    controller = parse_controller(str(model))
    assert controller.env_overrides == {"action": "log_share", "early_accept": False}  # not the budget
    assert parse_controller(f"{model}@action=fraction").env_overrides["action"] == "fraction"
    table = evaluate(ENV_ID, [str(model)], episodes=2, env_kwargs={"budget": 44}, progress=False)
    assert set(table["cost"]) <= set(range(11, 45))


def test_check_env_passes_with_several_chains():
    check_env(gym.make(ENV_ID, chains=2, budget=60).unwrapped, skip_render_check=True)


@pytest.mark.parametrize("kwargs, match", [({"chains": 0}, "chains must be an int >= 1"),
                                           ({"chains": 4, "budget": 40}, r"budget must be an int >= chains"),
                                           ({"chains": 2, "mode": "stop"}, "needs mode='quota'")])
def test_bad_chain_settings_give_one_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make(ENV_ID, **kwargs)


def test_stopping_chains_on_the_env_keeps_the_budget_exact():
    """Random quotas and stops with 3 chains: NFE never above the budget, the budget rebuilt from the transfers."""
    env = gym.make(ENV_ID, chains=3, budget=100).unwrapped
    env.action_space.seed(4)
    for seed in range(4):
        env.reset(seed=seed)
        done = False
        while not done:
            _, _, done, _, info = env.step(env.action_space.sample())
        chains = env.chains
        assert info["cost"] == chains.cost <= 99 and chains.alive.sum() >= 1
        np.testing.assert_array_equal(100 // 3 + chains.transfers.sum(axis=1), chains.budgets)
        assert np.all(chains.nfe <= chains.budgets) and info["wrong_mode"] in (0.0, 1.0)
        assert info["reward"] == chains.reward[chains.alive].max()


def test_one_chain_of_two_stopped_at_once_gives_the_other_its_budget():
    env = gym.make(ENV_ID, chains=2, budget=100, action="log_share").unwrapped
    env.reset(seed=1)
    env.step(np.array([0.5, 0.0], dtype=np.float32))
    env.step(np.array([0.5, 1.0], dtype=np.float32))
    chains = env.chains
    stopped = int(np.flatnonzero(~chains.alive)[0])
    assert chains.alive.sum() == 1 and chains.budgets.sum() == 100
    assert chains.budgets[stopped] == chains.nfe[stopped] == chains.used[stopped, 0]  # it spent only decision 0


def test_check_env_passes_with_resampling():
    check_env(gym.make(ENV_ID, chains=3, budget=90, resample=True).unwrapped, skip_render_check=True)


@pytest.mark.parametrize("kwargs, match", [({"resample": True}, "resample=True needs chains >= 2"),
                                           ({"chains": 2, "resample": "maybe"}, "resample")])
def test_bad_resample_settings_give_one_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make(ENV_ID, **kwargs)


def test_resampling_on_the_env_keeps_the_budget_exact():
    """Random quotas, stops and resamples with 3 chains: NFE never above the budget, each chain's NFE rebuilt from
    its proposals and fresh trajectories, budgets from the transfers, and the output the best candidate's."""
    env = gym.make(ENV_ID, chains=3, budget=100, resample=True).unwrapped
    env.action_space.seed(5)
    for seed in range(4):
        env.reset(seed=seed)
        done = False
        while not done:
            _, _, done, _, info = env.step(env.action_space.sample())
        chains = env.chains
        assert info["cost"] == chains.cost <= 99
        np.testing.assert_array_equal(chains.used.sum(axis=1) + chains.resampled.sum(axis=1), chains.nfe)
        np.testing.assert_array_equal(100 // 3 + chains.transfers.sum(axis=1) + chains.resampled.sum(axis=1),
                                      chains.budgets)
        assert info["reward"] == chains.reward[chains.alive | chains.finished].max()


def test_resampling_all_but_one_chain_at_decision_one_is_best_of_n_beside_one_chain():
    env = gym.make(ENV_ID, chains=4, budget=100, resample=True).unwrapped
    env.reset(seed=2)
    env.step(np.array([0.0, 0.0, 0.0], dtype=np.float32))
    for _ in range(3):
        env.step(np.array([0.0, 1.0, 1.0], dtype=np.float32))
    chains = env.chains
    assert chains.alive.sum() == 1 and chains.finished.sum() == 3
    assert np.all(chains.resampled.sum(axis=1)[~chains.alive] == 22)  # 24 unspent: two trajectories of 11 NFE


@pytest.mark.parametrize("mode", ["quota", "stop"])
def test_check_env_passes_across_budgets(mode):
    check_env(gym.make(ENV_ID, budget=[22, 33, 50], mode=mode, observe_budget=True).unwrapped,
              skip_render_check=True)
    check_env(gym.make(ENV_ID, budget=[44, 60], chains=2, observe_budget=True).unwrapped, skip_render_check=True)


def test_each_episode_draws_its_budget_and_keeps_its_nfe_exact():
    """A budget list: every budget drawn, the drawn one observed (ln(budget / minimum), last) and kept exactly with
    random quotas and stops on 2 chains (each chain's budget rebuilt from the transfers), the same seed the same
    budget."""
    budgets = (22, 33, 50)
    env = gym.make(ENV_ID, budget=list(budgets), chains=2, observe_budget=True).unwrapped
    env.action_space.seed(3)
    drawn = {}
    for seed in range(12):
        observation, start = env.reset(seed=seed)
        budget = start["budget"]
        assert budget in budgets and observation[-1] == np.float32(np.log(budget / 22))
        done = False
        while not done:
            observation, _, done, _, info = env.step(env.action_space.sample())
            assert observation[-1] == np.float32(np.log(budget / 22))
        chains = env.chains
        assert info["cost"] == chains.cost <= budget
        np.testing.assert_array_equal(budget // 2 + chains.transfers.sum(axis=1), chains.budgets)
        assert np.all(chains.nfe <= chains.budgets)
        drawn[seed] = budget
    assert set(drawn.values()) == set(budgets)
    assert all(env.reset(seed=seed)[1]["budget"] == budget for seed, budget in drawn.items())


def test_one_budget_in_a_list_is_that_budget():
    """budget=[B] runs the fixed-budget episode of budget=B (the same observations, rewards and NFE)."""
    runs = []
    for budget in (40, [40]):
        env = gym.make(ENV_ID, budget=budget, action="log_share")
        runs.append(_episode(env, 7, iter(lambda: np.array([0.6], dtype=np.float32), None)))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    assert runs[0][1] == runs[1][1] and runs[0][2]["cost"] == runs[1][2]["cost"]


@pytest.mark.parametrize("kwargs, match", [({"budget": []}, "budget must be an int >= chains"),
                                           ({"budget": [22, 5]}, "budget must be an int >= chains"),
                                           ({"budget": [22, 33.5]}, "budget must be an int >= chains"),
                                           ({"budget": [60, 40], "chains": 4}, r"chains·\(steps \+ 1\) = 44"),
                                           ({"observe_budget": "maybe"}, "observe_budget")])
def test_bad_budget_lists_give_one_clear_error(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make(ENV_ID, **kwargs)


def test_an_agent_trained_across_budgets_runs_at_each_budget_under_its_name(tmp_path):
    """Trained on a budget list with the budget observed: evaluated at one budget with observe_budget restored (the
    observation fits), and the bench names its rows 'agent across budgets'."""
    import argparse

    import yaml

    from adaptstep.agents.training import train
    from adaptstep.flow.bench import agent_rows

    config = tmp_path / "ppo.yml"
    config.write_text(yaml.safe_dump({ENV_ID: {"n_timesteps": 32, "policy": "MlpPolicy", "n_steps": 16,
                                               "batch_size": 16, "n_epochs": 1,
                                               "env_kwargs": {"budget": [22, 44], "observe_budget": True,
                                                              "action": "log_share", "early_accept": False}}}))
    model = train(ENV_ID, "ppo", tmp_path / "agent", config=config, progress_bar=False)
    args = argparse.Namespace(task="gmm-2d-compositional", sde="linear-sde", steps=10, episodes=3, seed=0)
    for budget in (22, 44):
        rows = agent_rows(str(model), budget, args)
        assert set(rows["method"]) == {"agent across budgets"}
        assert rows["cost"].max() <= budget and len(rows) == 3


def test_stop_mode_across_budgets_spends_at_most_each_drawn_budget():
    """Stop mode on a budget list: each episode's NFE (rebuilt from its quotas) within its drawn budget, which
    the observation names; always proposing again spends it all."""
    env = gym.make(ENV_ID, budget=[22, 33, 50], mode="stop", observe_budget=True).unwrapped
    rng = np.random.default_rng(0)
    for seed in range(9):
        observation, start = env.reset(seed=seed)
        budget, always = start["budget"], seed % 3 == 0
        assert observation[7] == np.float32(np.log(budget / 11))
        _, _, info = _episode(env, seed, iter(lambda: 0 if always else int(rng.random() < 0.3), None))
        assert info["cost"] == sum(info["quotas"]) <= budget
        if always:
            assert info["cost"] == budget
