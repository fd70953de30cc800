"""DAgger episodes: the policy drives, the scripted expert labels each visited state (stub policies, no training)."""

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import nn

from adaptstep.policies.dagger import ExpertLabels, make_dagger_demos
from adaptstep.policies.task import ReacherExpert, make_robot_env

PUSH = np.array([0.3, -0.2], np.float32)  # the stub policies' every action


@dataclass(frozen=True)
class StubConfig:
    obs_horizon: int = 2
    pred_horizon: int = 8
    action_steps: int = 4
    image_size: int = 32
    sampling_steps: int = 2
    solver: str = "ddim"


class ConstantPolicy(nn.Module):
    """A Diffusion Policy stand-in whose chunk always pushes with ``PUSH``."""

    def __init__(self) -> None:
        super().__init__()
        self.config, self.weight = StubConfig(), nn.Parameter(torch.zeros(1))

    def predict(self, images, proprio, steps, solver, seed):
        return np.tile(PUSH, (1, self.config.pred_horizon, 1)), steps


class CountingDualSystem(ConstantPolicy):
    """A dual-system stand-in that counts its System-2 calls."""

    system2_frames = 3

    def __init__(self) -> None:
        super().__init__()
        self.system2_calls = 0

    def system2(self, frames):
        self.system2_calls += 1
        return torch.zeros(1, 4, 8)

    def system1(self, tokens, proprio, steps, solver, seed):
        return self.predict(None, proprio, steps, solver, seed)


def replay_labels(task: str, seed: int, actions: np.ndarray, options: dict) -> tuple[np.ndarray, np.ndarray]:
    """(the expert's action, the proprio) at each state of an episode that executes ``actions``."""
    expert, env = ReacherExpert(elbow="positive"), make_robot_env(task, image_size=32)
    observation, _ = env.reset(seed=seed, options=options)
    labels, proprio = [], []
    for action in actions:
        labels.append(expert(env))
        proprio.append(observation["proprio"])
        observation, *_ = env.step(action)
    env.close()
    return np.array(labels), np.array(proprio)


def test_expert_labels_are_the_experts_actions_at_the_states_the_driver_visits():
    env = ExpertLabels(make_robot_env("reacher-moving", image_size=32), ReacherExpert(elbow="positive"),
                       {"jump_again": (12, 20)})
    env.reset(seed=7)
    executed = np.random.default_rng(0).uniform(-1, 1, (30, 2)).astype(np.float32)
    for action in executed:
        env.step(action)
    labels, proprio = replay_labels("reacher-moving", 7, executed, {"jump_again": (12, 20)})
    np.testing.assert_allclose(np.array(env.labels), labels, atol=1e-6)
    np.testing.assert_array_equal(np.array(env.proprio), proprio)
    assert not np.allclose(labels, executed, atol=0.1)  # labels, not the driver's actions
    env.close()


def test_policy_driven_episodes_are_labelled_by_the_expert():
    demos = make_dagger_demos(ConstantPolicy(), "reacher-moving", episodes=2, seed=3, jump_again=(12, 20))
    assert demos.episode_ends.tolist() == [80, 160] and demos.success.dtype == bool
    assert demos.target_jumps is not None and demos.target_jumps.max() >= 2 and demos.expert_waits is None
    assert demos.metadata["seeds"] == [3, 4] and demos.metadata["dagger"]["refresh_every"] == [1]
    labels, proprio = replay_labels("reacher-moving", 4, np.tile(PUSH, (80, 1)), {"jump_again": (12, 20)})
    np.testing.assert_allclose(demos.actions[80:], labels, atol=1e-6)
    np.testing.assert_allclose(demos.proprio[80:], proprio, atol=1e-6)


def test_dual_system_episodes_cycle_the_refresh_periods():
    policy = CountingDualSystem()
    demos = make_dagger_demos(policy, "reacher", episodes=2, refresh_every=(1, 4))
    assert demos.target_jumps is None and len(demos.episode_ends) == 2
    assert policy.system2_calls == 13 + 4  # reacher: 50 steps of 4-action calls; a refresh every call, then every 4th


@pytest.mark.parametrize("kwargs, name", [({"episodes": 0}, "episodes"), ({"seed": 1.5}, "seed"),
                                          ({"refresh_every": ()}, "refresh_every"),
                                          ({"refresh_every": (0,)}, "refresh_every"),
                                          ({"refresh_every": (True,)}, "refresh_every"),
                                          ({"task": "pendulum"}, "task")])
def test_bad_input_is_named(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_dagger_demos(ConstantPolicy(), **kwargs)
