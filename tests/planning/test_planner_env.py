"""adaptstep/PlannerBudget-v0 and the planning process: check_env, score and NFE accounting, bad input."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import adaptstep  # noqa: F401
from adaptstep.core.process import Process
from adaptstep.evaluation import evaluate
from adaptstep.planning.control import PlanExecution
from adaptstep.planning.diffuser import Diffuser, DiffuserConfig, Plan
from adaptstep.planning.maze_data import WaypointController
from adaptstep.planning.planners import DiffuserPlanner, load_planner, save_planner
from adaptstep.planning.scores import normalized_score
from adaptstep.planning.tasks import make_task_env, split_observation

ENV_ID = "adaptstep/PlannerBudget-v0"


class WaypointPlanner:
    """A scripted planner: every plan repeats the waypoint controller's action for the current state; it costs
    ``budget`` NFE."""

    horizon, obs_dim, act_dim, condition = 8, 4, 2, "goal"

    def __init__(self, maze) -> None:
        self.controller = WaypointController(maze)

    def plan(self, state, condition, budget, seed) -> Plan:
        action = self.controller.act(state[:2], state[2:], condition)
        return Plan(np.repeat(state[None, None], self.horizon, 1), np.tile(action, (1, self.horizon, 1)), budget)

    def act(self, plan, state, index):
        return plan.actions[plan.choice, index]


@pytest.fixture(scope="module")
def untrained_planner():
    torch.manual_seed(0)
    return DiffuserPlanner(Diffuser(DiffuserConfig(4, 2, horizon=8, dim=8, goal_dims=2), torch.zeros(6),
                                    torch.ones(6)))


def test_check_env_passes(untrained_planner):
    check_env(gym.make(ENV_ID, planner=untrained_planner, max_budget=3, replan_every=4).unwrapped)


def test_replanning_every_step_reproduces_the_controller():
    """With a scripted planner replanning at every step, the process reproduces the waypoint controller's
    episode exactly, and the NFE are the budgets spent."""
    task_env = make_task_env("maze2d-umaze")
    execution = PlanExecution(WaypointPlanner(task_env.unwrapped.maze), "maze2d-umaze", task_env, replan_every=1)
    summary = execution.run(budget=3, seed=5)
    env = make_task_env("maze2d-umaze")
    controller, (observation, _), score, done = WaypointController(env.unwrapped.maze), env.reset(seed=5), 0.0, False
    while not done:
        state, goal = split_observation("maze2d-umaze", observation)
        observation, reward, terminated, truncated, _ = env.step(controller.act(state[:2], state[2:], goal))
        score, done = score + reward, terminated or truncated
    assert summary["score"] == score > 100  # the controller reaches the goal and stays there
    assert summary["steps"] == 300 and summary["plans"] == 300 and summary["nfe"] == 900
    assert isinstance(execution, Process) and execution.done and execution.cost == 900
    assert execution.quality() == {"normalized_score": summary["normalized_score"]}
    assert summary["normalized_score"] == pytest.approx(normalized_score("maze2d-umaze", score))


def test_budget_zero_keeps_the_plan_until_it_is_used_up():
    task_env = make_task_env("maze2d-umaze")
    execution = PlanExecution(WaypointPlanner(task_env.unwrapped.maze), "maze2d-umaze", task_env, replan_every=2)
    execution.reset(seed=0)
    assert execution.replan(0) == 1 and execution.forced_replans == 1  # no plan yet: raised to one step
    spent = []
    for _ in range(6):
        execution.advance()
        spent.append(execution.replan(0))
    assert spent == [0, 0, 0, 1, 0, 0]  # a horizon-8 plan lasts 7 steps: 3 segments of 2, then a forced replan
    assert execution.forced_replans == 2 and execution.nfe == 2


def test_replan_every_zero_plans_once_and_follows_the_plan_to_the_episode_end():
    task_env = make_task_env("maze2d-umaze")
    execution = PlanExecution(WaypointPlanner(task_env.unwrapped.maze), "maze2d-umaze", task_env, replan_every=0)
    summary = execution.run(budget=3, seed=0)
    assert summary["plans"] == 1 and summary["nfe"] == 3 and summary["steps"] == 300
    env = gym.make(ENV_ID, planner=WaypointPlanner(task_env.unwrapped.maze), max_budget=3, replan_every=0)
    env.reset(seed=0)
    _, _, terminated, truncated, info = env.step(2)  # one env step: the whole episode
    assert truncated and not terminated and info["plans"] == 1 and info["cost"] == 2


def test_env_rewards_are_score_points_minus_weighted_nfe():
    task_env = make_task_env("maze2d-umaze")
    planner = WaypointPlanner(task_env.unwrapped.maze)
    env = gym.make(ENV_ID, planner=planner, max_budget=4, replan_every=4, nfe_weight=0.5)
    env.reset(seed=3)
    total, done = 0.0, False
    while not done:
        _, reward, terminated, truncated, info = env.step(2)
        total, done = total + reward, terminated or truncated
    low, high = 23.85, 161.86
    assert truncated and not terminated and info["cost"] == 2 * 75 and info["plans"] == 75
    assert total == pytest.approx(100 * info["score"] / (high - low) - 0.5 * info["cost"])
    assert info["normalized_score"] == pytest.approx(100 * (info["score"] - low) / (high - low))


def test_harness_runs_fixed_budgets(untrained_planner):
    table = evaluate(ENV_ID, ["fixed:budget=1", "fixed:budget=2"], episodes=1,
                     env_kwargs={"planner": untrained_planner, "max_budget": 2, "replan_every": 7}, progress=False)
    assert list(table["cost"]) == [43, 86]  # 300 steps in segments of 7: 43 plans of 1 or 2 steps
    assert np.all(np.isfinite(table["normalized_score"]))


def test_saved_planner_loads_with_identical_plans(untrained_planner, tmp_path):
    path = save_planner(untrained_planner.model, tmp_path / "planner.pt")
    loaded = load_planner(path, device="cpu")
    state, goal = np.array([1.0, 1.0, 0.0, 0.0]), np.array([2.0, 2.0])
    first, second = untrained_planner.plan(state, goal, 3, seed=1), loaded.plan(state, goal, 3, seed=1)
    np.testing.assert_array_equal(first.states, second.states)
    with pytest.raises(FileNotFoundError, match="no planner checkpoint"):
        load_planner(tmp_path / "missing.pt")


def test_following_states_is_diffusers_maze2d_controller(untrained_planner):
    """a = (p̂ − p) + (v̂ − v) toward the next planned state; past the plan, its last position at rest."""
    follower = DiffuserPlanner(untrained_planner.model, follow="states")
    state = np.array([1.0, 2.0, 0.5, -0.5])
    plan = follower.plan(state, np.array([3.0, 1.0]), 2, seed=0)
    np.testing.assert_allclose(follower.act(plan, state, 2), (plan.states[0, 3, :2] - state[:2])
                               + (plan.states[0, 3, 2:] - state[2:]), rtol=1e-6)
    np.testing.assert_allclose(follower.act(plan, state, 7), plan.states[0, 7, :2] - state[:2] - state[2:],
                               rtol=1e-6)
    np.testing.assert_array_equal(untrained_planner.act(plan, state, 2), plan.actions[0, 2])  # open loop
    with pytest.raises(ValueError, match=r"follow must be one of \('actions', 'states'\), got 'waypoints'"):
        DiffuserPlanner(untrained_planner.model, follow="waypoints")
    locomotion = Diffuser(DiffuserConfig(11, 3, horizon=8, dim=8), torch.zeros(14), torch.ones(14))
    with pytest.raises(ValueError, match="follow='states' needs a goal task"):
        DiffuserPlanner(locomotion, follow="states")


@pytest.mark.parametrize("kwargs, match", [
    ({"planner": None, "task": "maze2d-medium"}, r"the zoo ships a default for \['maze2d-umaze'\] only"),
    ({"task": "maze2d-tiny"}, "task must be one of"),
    ({"max_budget": 0}, "max_budget must be an int >= 1"),
    ({"replan_every": 8}, r"replan_every must be an int in \[0, horizon - 1 = 7\] \(0: plan once\)"),
    ({"replan_every": -1}, r"replan_every must be an int in \[0, horizon - 1 = 7\]"),
    ({"nfe_weight": -1.0}, "nfe_weight must be a finite number >= 0"),
    ({"task": "hopper-medium"}, "obs_dim, act_dim = 4, 2"),
])
def test_bad_input_is_named(untrained_planner, kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make(ENV_ID, **{"planner": untrained_planner, "replan_every": 4, **kwargs})


def test_bad_action_and_budget_are_named(untrained_planner):
    env = gym.make(ENV_ID, planner=untrained_planner, max_budget=3, replan_every=4)
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action must be an int in \[0, 3\]"):
        env.step(4)
    with pytest.raises(ValueError, match=r"budget must be an integer in \[0, max_budget = 3\]"):
        env.unwrapped.baseline_action(budget=5)
    with pytest.raises(ValueError, match="budget must be an int >= 1"):
        untrained_planner.plan(np.zeros(4), np.zeros(2), 0, seed=0)


def test_a_non_finite_plan_ends_the_episode_with_a_penalty():
    class BrokenPlanner(WaypointPlanner):
        def plan(self, state, condition, budget, seed) -> Plan:
            plan = super().plan(state, condition, budget, seed)
            plan.states[0, 3] = np.nan
            return plan

    env = gym.make(ENV_ID, planner=BrokenPlanner(make_task_env("maze2d-umaze").unwrapped.maze), replan_every=4)
    env.reset(seed=0)
    _, reward, terminated, truncated, info = env.step(1)
    assert terminated and not truncated and reward == -100.0 and info["failure"] == "non-finite plan"
    assert info["cost"] == 1 and info["score"] == 0.0
