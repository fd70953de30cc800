"""The planner interface that the planning process, the env and the benchmark call, and Diffuser behind it.

A planner has ``horizon``, ``obs_dim``, ``act_dim``, ``condition`` ("goal" or "return"), ``metadata`` (how it
was trained), and
- ``plan(state, condition, budget, seed, previous=None) -> Plan``: a plan from ``state`` with ``budget`` ≥ 1
  units of denoising (for Diffuser: solver steps from pure noise);
- ``act(plan, state, index) -> action``: the action at step ``index`` of the plan from the real ``state``.
``load_planner`` opens a checkpoint written by ``save_planner`` (or by a planner's own ``save``).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from adaptstep.diffusion.checkpoints import load_checkpoint, save_checkpoint
from adaptstep.planning.diffuser import Diffuser, DiffuserConfig, Plan, plan

PLANNER_KINDS = ("diffuser", "trajectory-diffuser")


class Planner(Protocol):
    horizon: int
    obs_dim: int
    act_dim: int
    condition: str
    metadata: dict

    def plan(self, state: np.ndarray, condition: np.ndarray | None, budget: int, seed: int,
             previous: Plan | None = None) -> Plan: ...

    def act(self, plan: Plan, state: np.ndarray, index: int) -> np.ndarray: ...


def check_budget(budget: int) -> int:
    if not (isinstance(budget, (int, np.integer)) and budget >= 1):
        raise ValueError(f"budget must be an int >= 1, got {budget!r}")
    return int(budget)


class DiffuserPlanner:
    """Diffuser as a planner: ``budget`` solver steps (``solver``) from pure noise, ``samples`` plans; the plan's
    chosen sample's actions are executed open loop (as Diffuser does between replanning points)."""

    def __init__(self, model: Diffuser, solver: str = "ddim", samples: int = 1) -> None:
        self.model, self.solver, self.samples, self.metadata = model, solver, samples, model.metadata
        config = model.config
        self.horizon, self.obs_dim, self.act_dim = config.horizon, config.obs_dim, config.act_dim
        self.condition = "goal" if config.goal_dims else "return"

    def plan(self, state: np.ndarray, condition: np.ndarray | None, budget: int, seed: int,
             previous: Plan | None = None) -> Plan:
        goal = condition if self.model.config.goal_dims else None
        return plan(self.model, state, goal=goal, steps=check_budget(budget), solver=self.solver,
                    samples=self.samples, seed=seed)

    def act(self, plan: Plan, state: np.ndarray, index: int) -> np.ndarray:
        return plan.actions[plan.choice, min(index, self.horizon - 1)]


def save_planner(model: torch.nn.Module, path: str | Path) -> Path:
    """Write a trained Diffuser (``train_diffuser``) atomically with its config and metadata."""
    if not isinstance(model, Diffuser):
        raise TypeError(f"save_planner writes Diffuser models; got {type(model).__name__} (use its own save)")
    return save_checkpoint(model, {"kind": "diffuser", **asdict(model.config)}, model.metadata, path)


def _build_diffuser(config: dict) -> Diffuser:
    config = {key: value for key, value in config.items() if key != "kind"}
    config["dim_mults"] = tuple(config["dim_mults"])
    width = config["obs_dim"] + config["act_dim"]
    return Diffuser(DiffuserConfig(**config), torch.zeros(width), torch.ones(width))


def load_planner(path: str | Path, device: str | torch.device = "auto", **options) -> Planner:
    """The planner saved at ``path``; ``options`` go to its constructor (e.g. ``solver``, ``samples``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no planner checkpoint at {path}")
    kind = torch.load(path, map_location="cpu", weights_only=True)["config"].get("kind")
    if kind == "diffuser":
        return DiffuserPlanner(load_checkpoint(path, _build_diffuser, "planner", device), **options)
    if kind == "trajectory-diffuser":
        from adaptstep.planning.trajectory_diffuser import TrajectoryDiffuser

        return TrajectoryDiffuser.load(path, device=device, **options)
    raise ValueError(f"{path} holds a planner of kind {kind!r}; expected one of {list(PLANNER_KINDS)}")
