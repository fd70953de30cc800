"""Reactive policies (behaviour cloning, IQL) as planners, so the offline harness runs them like the diffusion planners.

A ``PolicyPlanner`` "plans" one step: ``plan`` evaluates the policy network once (``nfe`` = 1) at the real state and
``act`` returns that action; it is run with a replanning period of 1 and budget 1. The network sees the
standardised state and, for a goal-conditioned policy, the standardised goal; its action is the mean
tanh(μ(s, g)) in [−1, 1]. Checkpoints hold the network, its input statistics and how it was trained
(``kind``: ``"bc"`` or ``"iql"``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from adaptstep.nn.checkpoints import load_checkpoint, save_checkpoint
from adaptstep.nn.device import resolve_device
from adaptstep.planning.diffuser import Plan
from adaptstep.planning.planners import check_budget

POLICY_KINDS = ("bc", "iql")


def mlp(inputs: int, outputs: int, hidden: tuple[int, ...]) -> nn.Sequential:
    """A ReLU MLP: ``inputs`` → ``hidden`` widths → ``outputs``."""
    layers: list[nn.Module] = []
    for width in hidden:
        layers += [nn.Linear(inputs, width), nn.ReLU()]
        inputs = width
    return nn.Sequential(*layers, nn.Linear(inputs, outputs))


class Policy(nn.Module):
    """A Gaussian policy N(tanh(μ(x)), diag σ²) with a state-independent log σ over standardised inputs.

    Args:
        obs_dim: The state's dimension.
        act_dim: The action's dimension.
        goal_dim: The goal's dimension (0: not goal-conditioned).
        hidden: The MLP's hidden widths.
        mean: The per-dimension input mean (state, then goal), shape (obs_dim + goal_dim,).
        std: The per-dimension input std, same shape.
    """

    def __init__(self, obs_dim: int, act_dim: int, goal_dim: int, hidden: tuple[int, ...],
                 mean: torch.Tensor, std: torch.Tensor) -> None:
        super().__init__()
        self.obs_dim, self.act_dim, self.goal_dim = obs_dim, act_dim, goal_dim
        self.net = mlp(obs_dim + goal_dim, act_dim, hidden)
        self.log_std = nn.Parameter(torch.zeros(act_dim))
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.as_tensor(std, dtype=torch.float32).clamp_min(1e-6))

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """The mean action tanh(μ) of raw inputs (state, goal)."""
        return torch.tanh(self.net((inputs - self.mean) / self.std))

    def log_prob(self, inputs: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """log N(actions; tanh(μ), σ²) summed over action dimensions, log σ clipped to [−5, 2]."""
        log_std = self.log_std.clamp(-5.0, 2.0)
        z = (actions - self(inputs)) / log_std.exp()
        return (-0.5 * z.pow(2) - log_std - 0.5 * np.log(2 * np.pi)).sum(-1)


class PolicyPlanner:
    """A policy in the planner interface (``planners.Planner``): one network evaluation per step.

    Args:
        policy: The trained policy.
        metadata: How it was trained.
        condition: ``"goal"`` or ``"return"`` (the task's; a return is not used).
    """

    horizon = 2

    def __init__(self, policy: Policy, metadata: dict, condition: str) -> None:
        self.policy, self.metadata, self.condition = policy.eval(), metadata, condition
        self.obs_dim, self.act_dim = policy.obs_dim, policy.act_dim
        self.device = next(policy.parameters()).device

    def plan(self, state: np.ndarray, condition: np.ndarray | None, budget: int, seed: int) -> Plan:
        """The policy's action at ``state`` (and the goal ``condition`` for a goal-conditioned policy)."""
        check_budget(budget)
        inputs = np.concatenate([state, condition]) if self.policy.goal_dim else np.asarray(state)
        with torch.no_grad():
            action = self.policy(torch.as_tensor(inputs, dtype=torch.float32, device=self.device)[None])
        action = action.cpu().numpy()[0]
        return Plan(states=np.repeat(np.asarray(state, np.float32)[None, None], 2, axis=1),
                    actions=np.repeat(action[None, None], 2, axis=1), nfe=1)

    def act(self, plan: Plan, state: np.ndarray, index: int) -> np.ndarray:
        """The planned action (the policy at the state it was planned from)."""
        return plan.actions[0, 0]


def save_policy(policy: Policy, kind: str, metadata: dict, path: str | Path) -> Path:
    """Write ``policy`` (trained by ``kind``, one of ``POLICY_KINDS``) atomically as a planner checkpoint."""
    config = {"kind": kind, "obs_dim": policy.obs_dim, "act_dim": policy.act_dim, "goal_dim": policy.goal_dim,
              "hidden": [layer.out_features for layer in policy.net if isinstance(layer, nn.Linear)][:-1]}
    return save_checkpoint(policy, config, metadata, path)


def load_policy_planner(path: str | Path, device: str | torch.device = "auto") -> PolicyPlanner:
    """The ``PolicyPlanner`` of a checkpoint written by ``save_policy`` (its task's condition from the metadata)."""
    def build(config: dict) -> Policy:
        width = config["obs_dim"] + config["goal_dim"]
        return Policy(config["obs_dim"], config["act_dim"], config["goal_dim"], tuple(config["hidden"]),
                      torch.zeros(width), torch.ones(width))

    policy = load_checkpoint(path, build, "planner", resolve_device(device))
    return PolicyPlanner(policy, dict(policy.metadata), policy.metadata.get("condition", "return"))
