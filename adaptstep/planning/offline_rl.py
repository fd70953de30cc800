"""The standard offline-RL baselines, trained on the same D4RL-layout data as the planners.

- Behaviour cloning: the ``Policy``'s mean regressed on the data's actions (MSE), goal-conditioned on the data's
  goal (``infos/goal``) where the task has goals.
- IQL (Kostrikov, Nair & Levine 2021, "Offline Reinforcement Learning with Implicit Q-Learning"): V by expectile
  regression L₂^τ(u) = |τ − 1(u < 0)|·u² on u = min(Q̄₁, Q̄₂)(s, a) − V(s); twin Q on r + γ(1 − d)V(s′) (MSE);
  Q̄ the Polyak average (rate 0.005) of Q; the policy by advantage-weighted regression, loss
  −E[min(exp(β(Q̄ − V)), 100)·log π(a | s)] with a cosine-decayed learning rate. The paper's settings: τ = 0.7
  (0.9 on antmaze), β = 3 (10 on antmaze), γ = 0.99, Adam 3e-4, batch 256, 2×256 MLPs; locomotion rewards scaled
  by 1000 / (max − min episode return). The policy is state-only by default (the maze2d-*-v1 rewards already
  name the evaluation goal); goal-conditioned IQL takes the data's goal g (``infos/goal``) as an input of π, Q and
  V, with the reward relabelled to it, r = 1(‖s_xy − g‖ ≤ 0.5), as D4RL's relabelling does for the fixed goal.
  Antmaze's (0.9, 10) is not better on maze2d throughout (25k steps, 100 episodes): 19.4 against 5.1 on
  maze2d-medium-v1, 12.2 against 21.5 on maze2d-umaze-v1.
"""

from __future__ import annotations

import copy
import time

import numpy as np
import torch
from tqdm.auto import tqdm

from adaptstep.nn.device import resolve_device
from adaptstep.nn.training import check_training_settings
from adaptstep.planning.datasets import OfflineDataset
from adaptstep.planning.policies import Policy, mlp


def expectile_loss(diff: torch.Tensor, tau: float) -> torch.Tensor:
    """Mean of |τ − 1(u < 0)|·u² over ``diff`` = u (IQL's L₂^τ)."""
    weight = torch.where(diff < 0, 1.0 - tau, tau)
    return (weight * diff.pow(2)).mean()


def _inputs(dataset: OfflineDataset, goal: bool) -> np.ndarray:
    """The policy inputs of every transition: the state, then the data's goal if ``goal``."""
    if goal and "goal" not in dataset.infos:
        raise ValueError("a goal-conditioned policy needs infos/goal in the dataset")
    return np.concatenate([dataset.observations, dataset.infos["goal"]], 1) if goal else dataset.observations


def _policy(inputs: np.ndarray, dataset: OfflineDataset, goal: bool, hidden: tuple[int, ...]) -> Policy:
    """An untrained ``Policy`` with the inputs' statistics (a goal shares the position's)."""
    mean, std = inputs.mean(0), inputs.std(0)
    if goal:
        mean[-2:], std[-2:] = mean[:2], std[:2]
    obs_dim, act_dim = dataset.observations.shape[1], dataset.actions.shape[1]
    return Policy(obs_dim, act_dim, inputs.shape[1] - obs_dim, hidden, torch.as_tensor(mean), torch.as_tensor(std))


def train_bc(dataset: OfflineDataset, goal: bool, steps: int = 20_000, batch_size: int = 256, lr: float = 3e-4,
             hidden: tuple[int, ...] = (256, 256, 256), seed: int = 0, device: str | torch.device = "auto",
             progress: bool = False) -> tuple[Policy, dict]:
    """Behaviour cloning: MSE of tanh(μ(s[, g])) to the data's action.

    Returns:
        The policy (on the CPU) and its training metadata (losses every 1% of the steps, seconds).
    """
    check_training_settings(steps, batch_size, lr, 0.0)
    torch.manual_seed(seed)
    rng, device = np.random.default_rng(seed), resolve_device(device)
    inputs = _inputs(dataset, goal)
    policy = _policy(inputs, dataset, goal, hidden).to(device)
    x = torch.as_tensor(inputs, dtype=torch.float32, device=device)
    a = torch.as_tensor(dataset.actions, dtype=torch.float32, device=device)
    optimizer = torch.optim.Adam(policy.parameters(), lr=lr)
    losses, started = [], time.perf_counter()
    for step in tqdm(range(steps), desc="bc", disable=not progress, mininterval=1.0):
        index = torch.as_tensor(rng.integers(len(x), size=batch_size), device=device)
        loss = (policy(x[index]) - a[index]).pow(2).sum(-1).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if step % max(steps // 100, 1) == 0 or step == steps - 1:
            losses.append(loss.item())
    metadata = {"method": "behaviour cloning (MSE)", "goal_conditioned": goal, "steps": steps, "batch_size": batch_size,
                "lr": lr, "hidden": list(hidden), "seed": seed, "losses": losses,
                "seconds": time.perf_counter() - started, "transitions": len(dataset)}
    return policy.cpu().eval(), metadata


def goal_rewards(dataset: OfflineDataset, radius: float = 0.5) -> np.ndarray:
    """The maze reward relabelled to each transition's own goal: 1(‖s_xy − g‖ ≤ ``radius``) with g = ``infos/goal``."""
    goals = _inputs(dataset, True)[:, dataset.observations.shape[1]:]
    return (np.linalg.norm(dataset.observations[:, :2] - goals, axis=1) <= radius).astype(np.float32)


def reward_scale(dataset: OfflineDataset) -> float:
    """IQL's locomotion reward scale 1000 / (max − min episode return) (1 when every return is equal)."""
    returns = [dataset.rewards[episode].sum() for episode in dataset.episodes()]
    spread = max(returns) - min(returns)
    return 1000.0 / float(spread) if spread > 0 else 1.0


def train_iql(dataset: OfflineDataset, steps: int = 100_000, batch_size: int = 256, lr: float = 3e-4,
              tau: float = 0.7, beta: float = 3.0, discount: float = 0.99, polyak: float = 0.005,
              scale_rewards: bool = False, goal: bool = False, hidden: tuple[int, ...] = (256, 256), seed: int = 0,
              device: str | torch.device = "auto", progress: bool = False) -> tuple[Policy, dict]:
    """Implicit Q-learning (see the module's description) on ``dataset`` (needs ``next_observations``).

    Args:
        dataset: The data; ``terminals`` end bootstrapping.
        steps: The gradient steps of each network.
        batch_size: The minibatch size.
        lr: Adam's learning rate (the policy's decays by a cosine over ``steps``).
        tau: The expectile τ in (0, 1).
        beta: The inverse temperature β > 0 of advantage weighting.
        discount: γ in [0, 1).
        polyak: The target networks' update rate.
        scale_rewards: Scale rewards by ``reward_scale`` (the paper does on locomotion).
        goal: Goal-conditioned: the data's goal (``infos/goal``) is an input of every network and the reward is
            relabelled to it (``goal_rewards``).
        hidden: The hidden widths of every MLP.
        seed: The seed of everything random.
        device: The torch device, ``"auto"`` for ``resolve_device``'s choice.
        progress: Show a progress bar.

    Returns:
        The policy (on the CPU) and its training metadata (losses every 1% of the steps, seconds).

    Raises:
        ValueError: If a setting is out of range or the dataset has no ``next_observations``.
    """
    check_training_settings(steps, batch_size, lr, 0.0)
    for name, value, low, high in (("tau", tau, 0.0, 1.0), ("discount", discount, 0.0, 1.0),
                                   ("polyak", polyak, 0.0, 1.0)):
        if not low < value < high and not (name == "discount" and value == 0.0):
            raise ValueError(f"{name} must be in ({low}, {high}), got {value!r}")
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta!r}")
    if dataset.next_observations is None:
        raise ValueError("IQL needs next_observations in the dataset")
    torch.manual_seed(seed)
    rng, device = np.random.default_rng(seed), resolve_device(device)
    inputs = _inputs(dataset, goal)
    next_inputs = np.concatenate([dataset.next_observations, inputs[:, dataset.observations.shape[1]:]], 1)
    rewards = goal_rewards(dataset) if goal else dataset.rewards
    in_dim, act_dim = inputs.shape[1], dataset.actions.shape[1]
    policy = _policy(inputs, dataset, goal, hidden).to(device)
    mean, std = policy.mean, policy.std
    q_nets = torch.nn.ModuleList([mlp(in_dim + act_dim, 1, hidden) for _ in range(2)]).to(device)
    q_target, value = copy.deepcopy(q_nets).requires_grad_(False), mlp(in_dim, 1, hidden).to(device)
    scale = reward_scale(dataset) if scale_rewards else 1.0
    s, a, s_next, r, done = (torch.as_tensor(np.asarray(array), dtype=torch.float32, device=device) for array in (
        inputs, dataset.actions, next_inputs, rewards, dataset.terminals))
    r = r * scale
    optimizers = [torch.optim.Adam(net.parameters(), lr=lr) for net in (value, q_nets, policy)]
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizers[2], steps)
    losses: dict[str, list[float]] = {"value": [], "q": [], "policy": []}
    started = time.perf_counter()

    def q_of(nets: torch.nn.ModuleList, states: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        x = torch.cat([(states - mean) / std, actions], -1)
        return torch.stack([net(x).squeeze(-1) for net in nets])

    for step in tqdm(range(steps), desc="iql", disable=not progress, mininterval=1.0):
        i = torch.as_tensor(rng.integers(len(s), size=batch_size), device=device)
        with torch.no_grad():
            target_q = q_of(q_target, s[i], a[i]).min(0).values
        v = value((s[i] - mean) / std).squeeze(-1)
        value_loss = expectile_loss(target_q - v, tau)
        with torch.no_grad():
            v_next = value((s_next[i] - mean) / std).squeeze(-1)
            backup = r[i] + discount * (1.0 - done[i]) * v_next
        q_loss = (q_of(q_nets, s[i], a[i]) - backup).pow(2).mean()
        weights = torch.exp(beta * (target_q - v.detach())).clamp(max=100.0)
        policy_loss = -(weights * policy.log_prob(s[i], a[i])).mean()
        for optimizer, loss in zip(optimizers, (value_loss, q_loss, policy_loss)):
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        schedule.step()
        with torch.no_grad():
            for averaged, current in zip(q_target.parameters(), q_nets.parameters()):
                averaged.lerp_(current, polyak)
        if step % max(steps // 100, 1) == 0 or step == steps - 1:
            for key, loss in zip(losses, (value_loss, q_loss, policy_loss)):
                losses[key].append(loss.item())
    metadata = {"method": "IQL (Kostrikov et al. 2021)", "goal_conditioned": goal, "steps": steps,
                "batch_size": batch_size, "lr": lr, "tau": tau, "beta": beta, "discount": discount,
                "polyak": polyak, "reward_scale": scale, "hidden": list(hidden), "seed": seed, "losses": losses,
                "seconds": time.perf_counter() - started, "transitions": len(dataset)}
    return policy.cpu().eval(), metadata
