"""The planner interface that the planning process, the env and the benchmark call, and Diffuser behind it.

A planner has ``horizon``, ``obs_dim``, ``act_dim``, ``condition`` ("goal" or "return"), ``metadata`` (how it
was trained), and
- ``plan(state, condition, budget, seed) -> Plan``: a plan from ``state`` with ``budget`` ≥ 1
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
from torch import nn

from adaptstep.nn.checkpoints import load_checkpoint, read_checkpoint, save_checkpoint
from adaptstep.planning.diffuser import Diffuser, DiffuserConfig, Plan, plan
from adaptstep.planning.trajectory_diffuser import TrajectoryDiffuser
from adaptstep.planning.value_guidance import ValueFunction, ValueGuide
from adaptstep.zoo import zoo_path

PLANNER_KINDS = ("diffuser", "trajectory-diffuser", "bc", "iql")


class Planner(Protocol):
    """The interface of a planner (see the module's description)."""

    horizon: int
    obs_dim: int
    act_dim: int
    condition: str
    metadata: dict

    def plan(self, state: np.ndarray, condition: np.ndarray | None, budget: int, seed: int) -> Plan:
        """A plan from ``state`` with ``budget`` ≥ 1 units of denoising."""

    def act(self, plan: Plan, state: np.ndarray, index: int) -> np.ndarray:
        """The action at step ``index`` of ``plan`` from the real ``state``."""


def check_budget(budget: int) -> int:
    """``budget`` as an int.

    Raises:
        ValueError: If ``budget`` is not an int >= 1.
    """
    if not (isinstance(budget, (int, np.integer)) and budget >= 1):
        raise ValueError(f"budget must be an int >= 1, got {budget!r}")
    return int(budget)


FOLLOW_MODES = ("actions", "states")


class DiffuserPlanner:
    """Diffuser as a planner: ``budget`` solver steps from pure noise.

    With ``follow="actions"`` the chosen plan's actions are executed open loop (as Diffuser does between
    replanning points on locomotion). With ``follow="states"`` the plan's states are tracked as Diffuser's maze2d
    script does (``scripts/plan_maze2d.py``): for states (position p, velocity v) and the next planned state
    (p̂, v̂), a = (p̂ − p) + (v̂ − v); past the plan's end, the last planned position with zero velocity. A return
    condition is not used: Diffuser steers by value guidance instead.

    Args:
        model: The trained Diffuser.
        solver: The sampler's solver (``plan``'s ``solver``).
        samples: The plans per call; None for 16 with a ``guide``, else 1.
        guide: The value guidance; with it the plans are guided and the best by V̂ is chosen.
        follow: ``"actions"`` or ``"states"`` (goal tasks, whose states are a position and its velocity).

    Raises:
        ValueError: If ``follow`` is not one of ``FOLLOW_MODES``, or ``"states"`` for a model without goals.
    """

    def __init__(self, model: Diffuser, solver: str = "ddim", samples: int | None = None,
                 guide: ValueGuide | None = None, follow: str = "actions") -> None:
        self.model, self.solver, self.guide, self.metadata = model, solver, guide, model.metadata
        self.samples = samples or (16 if guide else 1)
        config = model.config
        self.horizon, self.obs_dim, self.act_dim = config.horizon, config.obs_dim, config.act_dim
        self.condition = "goal" if config.goal_dims else "return"
        if follow not in FOLLOW_MODES:
            raise ValueError(f"follow must be one of {FOLLOW_MODES}, got {follow!r}")
        if follow == "states" and not (config.goal_dims and config.obs_dim == 2 * config.goal_dims):
            raise ValueError("follow='states' needs a goal task whose states are a position and its velocity "
                             f"(maze2d); this Diffuser has obs_dim {config.obs_dim} and goal_dims {config.goal_dims}")
        self.follow = follow

    def plan(self, state: np.ndarray, condition: np.ndarray | None, budget: int, seed: int) -> Plan:
        """``samples`` plans from ``state`` with ``budget`` solver steps (the goal as condition for maze2d)."""
        goal = condition if self.model.config.goal_dims else None
        return plan(self.model, state, goal=goal, steps=check_budget(budget), solver=self.solver,
                    samples=self.samples, seed=seed, guide=self.guide)

    def act(self, plan: Plan, state: np.ndarray, index: int) -> np.ndarray:
        """The chosen plan's action at ``index`` (the last one past the horizon), or its state tracked there."""
        if self.follow == "actions":
            return plan.actions[plan.choice, min(index, self.horizon - 1)]
        target = plan.states[plan.choice, min(index + 1, self.horizon - 1)].copy()
        half = self.obs_dim // 2
        if index + 1 >= self.horizon:
            target[half:] = 0.0
        state = np.asarray(state, dtype=target.dtype)
        return (target[:half] - state[:half]) + (target[half:] - state[half:])


def save_planner(model: Diffuser, path: str | Path, value: ValueFunction | None = None) -> Path:
    """Write a trained Diffuser and its value function atomically in one checkpoint with their configs and metadata.

    Args:
        model: The Diffuser (``train_diffuser``).
        path: The checkpoint file.
        value: Its value function (``train_value``), if any.
    """
    if not isinstance(model, Diffuser):
        raise TypeError(f"save_planner writes Diffuser models; got {type(model).__name__} (use its own save)")
    config, metadata = {"kind": "diffuser", **asdict(model.config)}, dict(model.metadata)
    if value is not None:
        config["value"], metadata["value"] = value.settings, value.metadata
    module = nn.ModuleDict({"diffuser": model, **({"value": value} if value is not None else {})})
    return save_checkpoint(module, config, metadata, path)


def _build_diffuser(config: dict) -> nn.ModuleDict:
    settings = {key: value for key, value in config.items() if key not in ("kind", "value")}
    settings["dim_mults"] = tuple(settings["dim_mults"])
    width = settings["obs_dim"] + settings["act_dim"]
    model = Diffuser(DiffuserConfig(**settings), torch.zeros(width), torch.ones(width))
    value = {"value": ValueFunction(model, **config["value"])} if "value" in config else {}
    return nn.ModuleDict({"diffuser": model, **value})


def load_planner(path: str | Path, device: str | torch.device = "auto", **options) -> Planner:
    """The planner saved at ``path``.

    Args:
        path: The checkpoint (``save_planner`` or a planner's own ``save``) or a ``zoo:NAME`` spec.
        device: The torch device, ``"auto"`` for ``resolve_device``'s choice.
        **options (Any): Keyword arguments of its constructor (e.g. ``solver``, ``samples``; for a Diffuser with a value
            function ``guidance={"scale": ...}`` goes to its ``ValueGuide``).
    """
    path = Path(zoo_path(path))
    if not path.is_file():
        raise FileNotFoundError(f"no planner checkpoint at {path}")
    config = read_checkpoint(path, "planner").get("config")
    kind = config.get("kind") if isinstance(config, dict) else None
    if kind == "diffuser":
        modules = load_checkpoint(path, _build_diffuser, "planner", device)
        model = modules["diffuser"]
        model.metadata = modules.metadata
        guide = ValueGuide(modules["value"], **options.pop("guidance", {})) if "value" in modules else None
        return DiffuserPlanner(model, guide=guide, **options)
    if kind == "trajectory-diffuser":
        return TrajectoryDiffuser.load(path, device=device, **options)
    if kind in ("bc", "iql"):
        from adaptstep.planning.policies import load_policy_planner  # policies import this module

        return load_policy_planner(path, device=device)
    raise ValueError(f"{path} holds a planner of kind {kind!r}; expected one of {list(PLANNER_KINDS)}")


def describe_planner(path: str | Path) -> dict:
    """The zoo's record of a planner checkpoint (``Family.checkpoints``): its task, kind and training seconds.

    Raises:
        ValueError: If ``path`` is not a planner checkpoint this version loads.
    """
    config = read_checkpoint(path, "planner").get("config")
    if not isinstance(config, dict) or config.get("kind") not in PLANNER_KINDS:
        raise ValueError(f"{path} is not a planner checkpoint (its config names no kind of {list(PLANNER_KINDS)})")
    metadata = load_planner(path, device="cpu").metadata
    seconds = metadata.get("seconds", 0.0) + (metadata.get("value") or {}).get("seconds", 0.0)
    return {"task": metadata.get("task"), "algo": config["kind"], "train_seconds": round(seconds, 1)}
