"""``adaptstep/PlannerBudget-v0``: choose a diffusion planner's denoising budget at every replanning point."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from gymnasium import spaces

from adaptstep.core.contract import AdaptiveEnv, Metric, check_parameters
from adaptstep.planning.control import PlanExecution
from adaptstep.planning.planners import Planner, load_planner
from adaptstep.planning.scores import reference_scores
from adaptstep.planning.tasks import make_task_env, planning_task
from adaptstep.zoo import zoo_path

FAILURE_PENALTY = -100.0
RETURN_SCALE = 1000.0  # return-to-go observations are divided by this
DEFAULT_PLANNERS = {"maze2d-umaze": "zoo:planner-maze2d-umaze"}  # the shipped planner of ``planner=None``


class PlannerBudgetEnv(AdaptiveEnv):
    """Choose a planner's denoising budget at every replanning point while it acts in a task.

    The planner is one of ``adaptstep train-planner``, the task one of ``adaptstep.planning.tasks``; one env step
    is one replanning point followed by ``replan_every`` control steps (``adaptstep.planning.control``).

    Action ``Discrete(max_budget + 1)``: 0 keeps executing the current plan (raised to 1 when there is none or it
    is used up), k ≥ 1 replans with k denoising steps (Diffuser: solver steps from noise; Trajectory Diffuser:
    refinement steps of its autoregressive proposal).
    Observation (float32): the state, the condition (maze2d: goal position; hopper: return-to-go / 1000), the RMS
    gap between the real state and the plan's state at this step, the plan's steps left / horizon, the episode's
    time / its step limit, the previous budget / max_budget and the previous segment's task reward per step.
    Reward: the segment's task reward in D4RL normalized-score points, 100·Σr / (ref_max − ref_min), minus
    ``nfe_weight`` per NFE; so an episode returns its normalized score (up to the constant 100·ref_min / (ref_max −
    ref_min)) minus ``nfe_weight``·NFE. A non-finite plan, action or state ends the episode with reward −100 and
    ``info["failure"]``. Info: ``cost`` (NFE so far), ``normalized_score`` (so far; final at the end), ``score``,
    ``plans``, ``forced_replans``, ``replan_every``; ``gym.make``'s ``WallTime`` adds ``plan_seconds`` (planning wall
    time) at the end.

    Args:
        planner: A planner checkpoint path (``adaptstep train-planner``), ``zoo:NAME`` or a planner object; None
            for the task's shipped default (``DEFAULT_PLANNERS``: a small trajectory diffuser on maze2d-umaze).
        task: The task, a key of ``PLANNING_TASKS``.
        max_budget: The largest budget k (>= 1).
        replan_every: The control steps between replanning points, in [1, horizon − 1]; 0 plans once (an episode
            of one env step, as Diffuser's maze2d protocol).
        nfe_weight: The reward's price of one NFE, in normalized-score points (>= 0).
        target_return: The return-to-go of return-conditioned tasks (hopper).
        planner_options: Keyword arguments of ``load_planner`` when ``planner`` is a path.
        device: The torch device of a loaded planner.
        render_mode: None (this env does not render).

    Raises:
        ValueError: If a kwarg is out of range or missing.
    """

    metadata = {"render_modes": []}
    metrics = (Metric("normalized_score", True, "D4RL normalized score of the episode"),)
    cost_unit = "NFE"
    agent_kwargs = ("task", "max_budget", "replan_every")  # what a trained agent's env must match
    summary_keys = ("score", "plans", "forced_replans", "replan_every")
    timing_keys = ("plan_seconds",)

    def __init__(self, planner: str | Path | Planner | None = None, task: str = "maze2d-umaze", max_budget: int = 10,
                 replan_every: int = 8, nfe_weight: float = 0.02, target_return: float | None = None,
                 planner_options: Mapping[str, Any] | None = None, device: str = "auto",
                 render_mode: str | None = None) -> None:
        spec = planning_task(task)
        planner = zoo_path(DEFAULT_PLANNERS.get(task) if planner is None else planner)
        if planner is None:
            raise ValueError(f"planner must be a planner checkpoint path (make one with `adaptstep train-planner`), "
                             f"zoo:NAME or a planner object; the zoo ships a default for {sorted(DEFAULT_PLANNERS)} "
                             f"only, not {task!r}")
        if not (isinstance(max_budget, int) and max_budget >= 1):
            raise ValueError(f"max_budget must be an int >= 1, got {max_budget!r}")
        if not (np.isfinite(nfe_weight) and nfe_weight >= 0):
            raise ValueError(f"nfe_weight must be a finite number >= 0, got {nfe_weight!r}")
        if render_mode is not None:
            raise ValueError(f"render_mode must be None (this env does not render), got {render_mode!r}")
        if isinstance(planner, (str, Path)):
            planner = load_planner(planner, device=device, **dict(planner_options or {}))
        self.planner, self.task, self.max_budget, self.nfe_weight = planner, task, max_budget, float(nfe_weight)
        self.execution = PlanExecution(planner, task, make_task_env(task), replan_every, target_return)
        low, high = reference_scores(task)
        self.points_per_reward = 100.0 / (high - low)
        self.condition_dim = 2 if spec.condition == "goal" else 1
        size = spec.obs_dim + self.condition_dim + 5
        self.observation_space = spaces.Box(-np.inf, np.inf, (size,), np.float32)
        self.action_space = spaces.Discrete(max_budget + 1)
        self._started = False  # step needs a reset first

    def baseline_action(self, **parameters: float) -> int:
        """The action of a fixed budget (``budget=K``, as ``fixed:budget=K`` gives)."""
        check_parameters(self, parameters, ("budget",))
        value = parameters["budget"]
        if not (float(value).is_integer() and 0 <= value <= self.max_budget):
            raise ValueError(f"budget must be an integer in [0, max_budget = {self.max_budget}], got {value!r}")
        return int(value)

    def _observation(self) -> np.ndarray:
        run, horizon = self.execution, self.planner.horizon
        condition = run.condition if run.spec.condition == "goal" else run.condition / RETURN_SCALE
        gap = 0.0
        if run.plan is not None:
            gap = float(np.sqrt(np.mean((run.state - run.plan.states[run.plan.choice, run.index]) ** 2)))
        features = [gap, run.plan_steps_left() / horizon, run.steps / run.spec.max_steps,
                    self._last_budget / self.max_budget, self._last_reward / (run.replan_every or max(run.steps, 1))]
        return np.concatenate([run.state, condition, features]).astype(np.float32)

    def _info(self) -> dict[str, Any]:
        run = self.execution
        return {"cost": run.nfe, "normalized_score": run.normalized_score, "score": run.score, "plans": run.plans,
                "forced_replans": run.forced_replans, "replan_every": run.replan_every}

    def timings(self) -> dict[str, float]:
        """Planning wall time of the episode so far."""
        return {"plan_seconds": self.execution.plan_seconds}

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode of the task from ``seed`` (or one drawn from the env's generator)."""
        super().reset(seed=seed)
        self._started = True
        episode_seed = int(self.np_random.integers(2**31)) if seed is None else seed
        self.execution.reset(episode_seed)
        self._last_budget, self._last_reward = 0, 0.0
        return self._observation(), self._info()

    def step(self, action):
        """Apply the budget at this replanning point, then run ``replan_every`` control steps."""
        if not self._started:
            raise RuntimeError("call reset() before step()")
        if not self.action_space.contains(action):
            raise ValueError(f"action must be an int in [0, {self.max_budget}], got {action!r}")
        run = self.execution
        nfe = run.replan(int(action))
        segment = run.advance() if not run.done else 0.0
        self._last_budget, self._last_reward = int(action), segment
        reward = self.points_per_reward * segment - self.nfe_weight * nfe
        info = self._info()
        if run.failure:
            reward, info["failure"] = FAILURE_PENALTY, run.failure
        truncated = run.done and not run.failure and run.steps >= run.spec.max_steps
        terminated = run.done and not truncated
        return self._observation(), float(reward), terminated, truncated, info

    def close(self) -> None:
        """Close the task env."""
        self.execution.env.close()
