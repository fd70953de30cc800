"""A planner acting in a real task with replanning.

This is the process behind ``adaptstep/PlannerBudget-v0`` and the offline benchmark.

Every ``replan_every`` control steps is a replanning point where a budget is chosen: 0 keeps executing the
current plan, k ≥ 1 replans with k units of denoising (the planner's NFE are counted). A budget of 0 with no
plan, or with a plan whose horizon is used up, is raised to 1 (counted in ``forced_replans``). Between replanning
points the planner's ``act`` turns the plan and the real state into actions. The quality is the task's summed
reward (its D4RL normalized score), the cost the planner's NFE. A non-finite state, action or reward ends the
episode with ``failure`` set.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from adaptstep.planning.planners import Planner
from adaptstep.planning.scores import normalized_score
from adaptstep.planning.tasks import planning_task, split_observation


class PlanExecution:
    """One episode of a planner in a task env.

    Args:
        planner: The planner.
        task: The task's name, a key of ``PLANNING_TASKS``.
        task_env (gymnasium.Env): The task's env, made by ``make_task_env(task)``.
        replan_every: The control steps between replanning points, in [1, horizon − 1]; 0 plans once, at the
            episode's start, and follows that plan to the episode's end (Diffuser's maze2d protocol; past the
            plan's horizon the planner acts at its last step).
        target_return: The return-to-go a return-conditioned planner starts from (required for such tasks).

    Raises:
        ValueError: If ``replan_every`` is out of range, the planner's dimensions do not fit the task, or a
            return-conditioned task lacks ``target_return``.
    """

    def __init__(self, planner: Planner, task: str, task_env: Any, replan_every: int = 8,
                 target_return: float | None = None) -> None:
        spec = planning_task(task)
        if not (isinstance(replan_every, int) and 0 <= replan_every <= planner.horizon - 1):
            raise ValueError(f"replan_every must be an int in [0, horizon - 1 = {planner.horizon - 1}] (0: plan "
                             f"once), got {replan_every!r}")
        if (planner.obs_dim, planner.act_dim) != (spec.obs_dim, spec.act_dim):
            raise ValueError(f"the planner has obs_dim, act_dim = {planner.obs_dim}, {planner.act_dim}; task {task!r} "
                             f"needs {spec.obs_dim}, {spec.act_dim}")
        if spec.condition == "return" and target_return is None:
            raise ValueError(f"task {task!r} conditions on a return: pass target_return")
        self.planner, self.task, self.env, self.spec = planner, task, task_env, spec
        self.replan_every, self.target_return = replan_every, target_return

    def reset(self, seed: int) -> None:
        """Start an episode of the task env from ``seed``."""
        observation, _ = self.env.reset(seed=seed)
        self.state, self.goal = split_observation(self.task, observation)
        self.seed, self.plan, self.index = seed, None, 0
        self.score, self.steps, self.nfe, self.plans, self.forced_replans = 0.0, 0, 0, 0, 0
        self.plan_seconds, self.done, self.failure = 0.0, False, ""

    @property
    def condition(self) -> np.ndarray | None:
        """The planner's condition now: the goal (maze2d), or the return-to-go left (hopper)."""
        if self.spec.condition == "goal":
            return self.goal
        return np.array([self.target_return - self.score])

    @property
    def normalized_score(self) -> float:
        """The D4RL normalized score of the reward summed so far."""
        return float(normalized_score(self.task, self.score))

    def plan_steps_left(self) -> int:
        """The steps of the current plan not yet executed (0 without a plan)."""
        return 0 if self.plan is None else self.planner.horizon - 1 - self.index

    def replan(self, budget: int) -> int:
        """Apply a replanning point's budget; returns the NFE spent."""
        if budget == 0 and self.plan_steps_left() >= 1:
            return 0
        if budget == 0:
            budget, self.forced_replans = 1, self.forced_replans + 1
        started = time.perf_counter()
        seed = self.seed * 100_003 + self.plans
        self.plan = self.planner.plan(self.state, self.condition, budget, seed=seed)
        self.plan_seconds += time.perf_counter() - started
        self.index, self.plans, self.nfe = 0, self.plans + 1, self.nfe + self.plan.nfe
        if not np.all(np.isfinite(self.plan.states)):
            self.done, self.failure = True, "non-finite plan"
        return self.plan.nfe

    def advance(self) -> float:
        """Run up to ``replan_every`` control steps of the plan (0: to the episode's end); returns the summed
        task reward."""
        total, taken = 0.0, 0
        while not self.done and (self.replan_every == 0 or taken < self.replan_every):
            taken += 1
            action = np.asarray(self.planner.act(self.plan, self.state, self.index), np.float32)
            if not np.all(np.isfinite(action)):
                self.done, self.failure = True, "non-finite action"
                break
            observation, reward, terminated, truncated, _ = self.env.step(action)
            self.state, _ = split_observation(self.task, observation)
            if not (np.isfinite(reward) and np.all(np.isfinite(self.state))):
                self.done, self.failure = True, "non-finite state or reward"
                break
            total += float(reward)
            self.index, self.steps = min(self.index + 1, self.planner.horizon - 1), self.steps + 1
            self.done = terminated or truncated
        self.score += total
        return total

    def run(self, budget: int, seed: int) -> dict[str, float]:
        """A whole episode with one fixed budget at every replanning point (k = 0 never replans while it can)."""
        self.reset(seed)
        while not self.done:
            self.replan(budget)
            self.advance()
        return self.summary()

    @property
    def cost(self) -> int:
        """Denoising steps (NFE) of every plan so far."""
        return self.nfe

    def quality(self) -> dict[str, float]:
        """The episode's D4RL normalized score so far."""
        return {"normalized_score": self.normalized_score}

    def summary(self) -> dict[str, float]:
        """Score, normalized score, NFE, plans, steps, planning seconds and the failure, if any."""
        return {"score": self.score, "normalized_score": self.normalized_score, "nfe": self.nfe,
                "plans": self.plans, "steps": self.steps, "plan_seconds": self.plan_seconds,
                "seconds_per_plan": self.plan_seconds / max(self.plans, 1), "failure": self.failure}

