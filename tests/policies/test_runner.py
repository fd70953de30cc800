"""The runner's schedule, counters and action slicing, and DualSystem-v0's contract, with stub policies (no
training): System 2 returns fixed tokens, System 1 a known chunk."""

import time
from dataclasses import dataclass
from functools import partial

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from torch import nn

import adaptstep  # noqa: F401
from adaptstep.agents.controllers import parse_controller
from adaptstep.core.process import Process
from adaptstep.evaluation import play_episode as harness_episode
from adaptstep.policies.runner import PolicyExecution, measure_system2_cost, rollout, run_policy_episode
from adaptstep.policies.task import make_robot_env, target_colour_weight


@dataclass(frozen=True)
class StubConfig:
    obs_horizon: int = 2
    pred_horizon: int = 8
    action_steps: int = 4
    image_size: int = 32
    proprio_dim: int = 6
    sampling_steps: int = 2
    solver: str = "ddim"


class StubDualSystem(nn.Module):
    """Chunk row j is (j, −j) / 10 times ``gain``; records what each system was given."""

    def __init__(self, gain: float = 1.0) -> None:
        super().__init__()
        self.config, self.gain = StubConfig(), gain
        self.weight = nn.Parameter(torch.zeros(1))
        self.frames_seen, self.steps_seen = [], []
        self.system2_frames = 3

    def system2(self, frames):
        assert frames.shape == (1, self.system2_frames, 32, 32, 3) and frames.dtype == np.uint8
        self.frames_seen.append(frames)
        return torch.ones(1, 4, 8)

    def system1(self, tokens, proprio, steps, solver, seed):
        assert tokens.shape == (1, 4, 8) and proprio.shape == (1, self.config.obs_horizon, 6)
        self.steps_seen.append(steps)
        rows = torch.arange(self.config.pred_horizon, dtype=torch.float32)[None, :, None]
        return self.gain * torch.cat([rows, -rows], dim=2) / 10, steps


class StubDiffusionPolicy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.config = StubConfig()
        self.weight = nn.Parameter(torch.zeros(1))

    def predict(self, images, proprio, steps, solver, seed):
        assert images.shape == (1, 2, 32, 32, 3) and steps == 2 and solver == "ddim"
        return np.zeros((1, 8, 2), np.float32), steps


class Recorder(gym.Wrapper):
    def __init__(self, env):
        super().__init__(env)
        self.actions = []

    def step(self, action):
        self.actions.append(np.array(action))
        return self.env.step(action)


@pytest.fixture(scope="module")
def env():
    env = Recorder(make_robot_env("reacher", image_size=32))
    yield env
    env.close()


@pytest.mark.parametrize("every", [1, 3, 8])
def test_refresh_schedule_counts_calls_and_compute(env, every):
    policy = StubDualSystem()
    execution = PolicyExecution(policy, env, system2_cost=9.0)
    summary = run_policy_episode(execution, seed=3, refresh_every=every)
    calls = -(-50 // 4)
    assert (summary.steps, summary.calls, summary.nfe) == (50, calls, 2 * calls)
    assert summary.system2_calls == len(policy.frames_seen) == -(-calls // every)
    assert summary.compute == pytest.approx(calls + 9.0 * summary.system2_calls)
    assert summary.system1_seconds > 0 and summary.system2_seconds > 0


class TaggingDualSystem(StubDualSystem):
    """System 2's tokens carry the index of its call; System 1 records the index it was given. ``delay`` seconds of
    sleep stand in for System 2's compute."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__()
        self.delay, self.tags_used = delay, []

    def system2(self, frames):
        time.sleep(self.delay)
        return super().system2(frames) * (len(self.frames_seen) - 1)

    def system1(self, tokens, proprio, steps, solver, seed):
        self.tags_used.append(int(tokens[0, 0, 0]))
        return super().system1(torch.ones_like(tokens), proprio, steps, solver, seed)


@pytest.mark.parametrize("every", [1, 3, 4])
def test_asynchronous_runner_uses_each_refresh_from_the_next_one_on(env, every):
    synchronous, asynchronous = TaggingDualSystem(), TaggingDualSystem()
    run_policy_episode(PolicyExecution(synchronous, env), seed=2, refresh_every=every)
    execution = PolicyExecution(asynchronous, env, asynchronous=True)
    summary = run_policy_episode(execution, seed=2, refresh_every=every)
    execution.close()
    calls = range(summary.calls)
    # call t uses System 2's call on the frames of call k·(⌊t/k⌋ − 1): the first one for the first two periods
    assert asynchronous.tags_used == [max(t // every - 1, 0) for t in calls]
    assert synchronous.tags_used == [t // every for t in calls]
    assert summary.system2_calls == len(asynchronous.frames_seen) == -(-summary.calls // every)
    assert all(np.array_equal(a, b) for a, b in zip(synchronous.frames_seen, asynchronous.frames_seen, strict=True))


@pytest.mark.parametrize("asynchronous", [False, True])
def test_tokens_age_counts_calls_since_the_frames_behind_the_tokens(env, asynchronous):
    execution = PolicyExecution(TaggingDualSystem(), env, asynchronous=asynchronous)
    execution.reset(seed=3)
    ages, distances = [], [execution.distance]
    while not execution.done:
        execution.advance(refresh=execution.calls % 3 == 0)
        ages.append(execution.tokens_age)
        distances.append(execution.distance)
    execution.close()
    assert isinstance(execution, Process) and execution.cost == execution.summary().compute
    assert execution.quality()["final_distance"] == execution.summary().final_distance
    assert execution.summary().best_distance == execution.quality()["best_distance"] <= min(distances)
    window = [max(t // 3 - 1, 0) * 3 if asynchronous else t // 3 * 3 for t in range(len(ages))]
    assert ages == [t + 1 - start for t, start in enumerate(window)]


def test_asynchronous_runner_overlaps_system2_with_the_control_loop(env):
    execution = PolicyExecution(TaggingDualSystem(delay=0.02), env, asynchronous=True)
    summary = run_policy_episode(execution, seed=0, refresh_every=1)
    execution.close()
    assert execution._worker is None
    # 13 System-2 calls of 20 ms each; only the first one, in line, must hold up the loop for all of its time
    assert summary.system2_seconds >= 13 * 0.02
    assert summary.blocked_seconds < summary.system2_seconds
    assert summary.policy_seconds == pytest.approx(summary.system1_seconds + summary.blocked_seconds)


def test_executed_actions_are_the_chunk_from_position_obs_horizon_minus_one(env):
    env.actions.clear()
    execution = PolicyExecution(StubDualSystem(), env, system2_cost=1.0)
    execution.reset(seed=0)
    execution.advance(refresh=False)
    assert execution.system2_calls == 1  # nothing cached yet: the first call refreshes anyway
    expected = np.stack([np.arange(1, 5), -np.arange(1, 5)], axis=1) / 10
    assert np.allclose(np.stack(env.actions), expected)
    assert execution.steps == 4 and execution.calls_since_refresh == 1


def test_system2_sees_the_newest_frames(env):
    policy = StubDualSystem()
    execution = PolicyExecution(policy, env, system2_cost=1.0)
    execution.reset(seed=1)
    execution.advance(refresh=True)
    newest = execution.frames[-1]
    execution.advance(refresh=True)
    first, second = policy.frames_seen
    assert np.array_equal(first[0, 0], first[0, 2])  # padded with the reset frame
    assert np.array_equal(second[0, -1], newest) and not np.array_equal(second[0, -1], first[0, -1])


def test_non_finite_actions_end_the_episode_with_a_failure(env):
    execution = PolicyExecution(StubDualSystem(gain=float("nan")), env, system2_cost=1.0)
    execution.reset(seed=0)
    execution.advance()
    assert execution.done and execution.failure == "non-finite action"
    assert not execution.summary().success
    with pytest.raises(RuntimeError, match="reset"):
        execution.advance()


def test_plain_diffusion_policy_runs_without_system2(env):
    summary = run_policy_episode(PolicyExecution(StubDiffusionPolicy(), env), seed=0)
    assert summary.system2_calls == 0 and summary.calls == 13 and summary.compute == 13


def test_bad_settings_are_named(env):
    with pytest.raises(ValueError, match="action_steps"):
        PolicyExecution(StubDualSystem(), env, action_steps=8)
    with pytest.raises(ValueError, match="system2_cost"):
        PolicyExecution(StubDualSystem(), env, system2_cost=-1.0)
    with pytest.raises(ValueError, match="asynchronous must be True or False"):
        PolicyExecution(StubDualSystem(), env, asynchronous="yes")
    with pytest.raises(ValueError, match="refresh_every"):
        run_policy_episode(PolicyExecution(StubDualSystem(), env), seed=0, refresh_every=0)


def test_rollout_and_measured_cost():
    summaries = rollout(StubDualSystem(), seeds=[0, 1], refresh_every=2)
    assert [summary.seed for summary in summaries] == [0, 1]
    assert all(summary.system2_calls == 7 for summary in summaries)
    assert measure_system2_cost(StubDualSystem(), repeats=2) > 0


def test_dual_system_env_contract_and_rewards():
    env = gym.make("adaptstep/DualSystem-v0", policy=StubDualSystem(), system2_cost=9.0, compute_weight=0.1)
    check_env(env.unwrapped, skip_render_check=True)
    observation, info = env.reset(seed=4)
    assert env.observation_space.contains(observation) and info["cost"] == 0
    _, reward, *_ , info = env.step(0)  # forced refresh: costs 1 + 9 System-1 calls
    run = env.unwrapped.execution
    progress = (run.initial_distance - run.distance) / run.initial_distance
    assert info["cost"] == 10 and info["system2_calls"] == 1
    assert reward == pytest.approx(progress - 0.1)
    before = run.distance
    _, reward, *_ , info = env.step(0)
    assert info["cost"] == 11 and reward == pytest.approx((before - run.distance) / run.initial_distance - 0.01)
    env.close()


def test_asynchronous_dual_system_env_contract():
    env = gym.make("adaptstep/DualSystem-v0", policy=TaggingDualSystem(), system2_cost=3.0, asynchronous=True)
    check_env(env.unwrapped, skip_render_check=True)
    row = harness_episode(env, parse_controller("refresh:every=2"), seed=0)
    assert row["cost"] == pytest.approx(13 + 7 * 3.0)
    episode = np.array(env.unwrapped.policy.tags_used[-13:])  # tags count on across check_env's episodes
    assert (episode - episode[0]).tolist() == [max(t // 2 - 1, 0) for t in range(13)]
    run = env.unwrapped.execution  # after call 12: its hand-off dropped unused, tokens from call 10's frames
    assert (run.calls_since_refresh, run.tokens_age) == (1, 3)
    assert env.unwrapped._observation()[1:3] == pytest.approx([1 / 13, 3 / 13])
    env.close()
    assert env.unwrapped.execution._worker is None


def test_periodic_refresh_controller_on_the_env():
    env = gym.make("adaptstep/DualSystem-v0", policy=StubDualSystem(), system2_cost=4.0)
    row = harness_episode(env, parse_controller("refresh:every=4"), seed=0)
    assert env.unwrapped.execution.system2_calls == 4  # calls 0, 4, 8, 12 of 13
    assert row["cost"] == pytest.approx(13 + 4 * 4.0) and row["success"] in (0.0, 1.0)
    env.close()
    choices = gym.make("adaptstep/DualSystem-v0", policy=StubDualSystem(), system2_cost=4.0, steps_choices=[1, 3])
    assert choices.action_space.nvec.tolist() == [2, 2]
    row = harness_episode(choices, parse_controller("refresh:every=2,steps=3"), seed=0)
    assert set(choices.unwrapped.policy.steps_seen) == {3}
    assert row["cost"] == pytest.approx(13 * 3 / 2 + 7 * 4.0)  # 3 solver steps against the policy's own 2
    with pytest.raises(ValueError, match="steps_choices"):
        harness_episode(choices, parse_controller("refresh:every=2,steps=5"), seed=0)
    choices.close()


def test_dual_system_env_rejects_bad_input():
    with pytest.raises(ValueError, match=r"the zoo ships a default for \['reacher'\] only, not 'reacher-moving'"):
        gym.make("adaptstep/DualSystem-v0", task="reacher-moving")  # policy=None: the zoo's default for reacher only
    with pytest.raises(ValueError, match="dual-system"):
        gym.make("adaptstep/DualSystem-v0", policy=StubDiffusionPolicy())
    with pytest.raises(ValueError, match="task"):
        gym.make("adaptstep/DualSystem-v0", policy=StubDualSystem(), task="pusher")
    with pytest.raises(ValueError, match="compute_weight"):
        gym.make("adaptstep/DualSystem-v0", policy=StubDualSystem(), compute_weight=-1.0)
    with pytest.raises(ValueError, match="refresh"):
        parse_controller("refresh:every=0")


def test_the_largest_step_change_shows_a_target_jump_wherever_in_the_call_it_fell():
    """With the arm held still (zero actions) only the jump changes the image: the observation's largest one-step
    change is zero at every call but the one whose steps hold the jump, whichever step of the call that was."""
    env = gym.make("adaptstep/DualSystem-v0", policy=StubDualSystem(gain=0.0), task="reacher-moving",
                   system2_cost=1.0)
    check_env(env.unwrapped, skip_render_check=True)
    robot = env.unwrapped.execution.env
    jump_steps = set()
    for seed in range(4):
        observation, _ = env.reset(seed=seed)
        changes, jump_call, done = [], None, False
        while not done:
            target = robot.unwrapped.data.qpos[2:4].copy()
            observation, _, terminated, truncated, info = env.step(0)
            changes.append(observation[5])
            if not np.array_equal(target, robot.unwrapped.data.qpos[2:4]):
                jump_call = len(changes) - 1
            done = terminated or truncated
        jump_steps.add(robot._jump_step)
        assert info["calls"] == 20 and jump_call == (robot._jump_step - 1) // 4
        assert changes[jump_call] > 0.003
        assert max(changes[:jump_call] + changes[jump_call + 1:]) < 0.1 * changes[jump_call]
    assert len({(step - 1) % 4 for step in jump_steps}) > 1  # the jump fell on different steps of its call
    env.close()


def trigger_episode(env, controller, seed: int) -> tuple[list[int], int, list[np.ndarray], dict]:
    """One episode of ``controller``: its refresh flags, the call whose steps first changed the target (it jumped
    or appeared), the observations after each call, the last info."""
    robot = env.unwrapped.execution.env

    def target() -> tuple:
        return (*robot.unwrapped.data.qpos[2:4], robot.target_visible)

    controller.reset(env, seed)
    observation, info = env.reset(seed=seed)
    refreshes, observations, scene_call, done = [], [], None, False
    while not done:
        action, before = controller.act(observation), target()
        refreshes.append(int(action))
        observation, _, terminated, truncated, info = env.step(action)
        observations.append(observation)
        if scene_call is None and target() != before:
            scene_call = len(refreshes) - 1
        done = terminated or truncated
    return refreshes, scene_call, observations, info


def test_event_triggered_refresh_refreshes_right_after_a_target_jump():
    """Arm held still: the only large pixel change is the jump, so ``refresh:every=20,change=…`` refreshes at the
    first call and at the call after the one whose steps held the jump, nowhere else."""
    env = gym.make("adaptstep/DualSystem-v0", policy=StubDualSystem(gain=0.0), task="reacher-moving",
                   system2_cost=1.0)
    controller = parse_controller("refresh:every=20,change=0.003")
    for seed in range(3):
        refreshes, jump_call, _, info = trigger_episode(env, controller, seed)
        assert np.flatnonzero(refreshes).tolist() == [0, jump_call + 1] and info["system2_calls"] == 2
    env.close()


def test_target_triggered_refresh_sees_a_jump_that_the_moving_arm_hides_from_the_pixel_change():
    """The stub swings the arm, so the plain pixel change passes 0.008 away from the jump too, while the target
    colour's change does so only at the jump: ``refresh:every=20,target_change=0.008`` refreshes at the first call
    and right after the jump's call, nowhere else."""
    env = gym.make("adaptstep/DualSystem-v0", policy=StubDualSystem(gain=1.0), task="reacher-moving",
                   system2_cost=1.0)
    pixel = env.unwrapped.features.index("largest_step_change")
    controller = parse_controller("refresh:every=20,target_change=0.008")
    for seed in range(3):
        refreshes, jump_call, observations, info = trigger_episode(env, controller, seed)
        assert np.flatnonzero(refreshes).tolist() == [0, jump_call + 1] and info["system2_calls"] == 2
        assert max(o[pixel] for call, o in enumerate(observations) if call != jump_call) > 0.008
    env.close()


def test_target_triggered_refresh_refreshes_right_after_the_target_appears():
    """reacher-appearing, the arm held still: the target colour's change passes the threshold only at the call
    whose steps showed the target, so ``refresh:every=15,target_change=0.003`` refreshes at the first call and
    right after that one (the one disc that appears changes it about half as much as a jump, which moves it)."""
    env = gym.make("adaptstep/DualSystem-v0", policy=StubDualSystem(gain=0.0), task="reacher-appearing",
                   system2_cost=1.0)
    check_env(env.unwrapped, skip_render_check=True)
    controller = parse_controller("refresh:every=15,target_change=0.003")
    for seed in range(4):
        refreshes, shown_call, _, info = trigger_episode(env, controller, seed)
        assert info["calls"] == 15 and shown_call is not None
        assert np.flatnonzero(refreshes).tolist() == [0, shown_call + 1] and info["system2_calls"] == 2
    env.close()


def test_target_colour_weight_is_one_for_the_targets_red_and_zero_for_greys():
    images = np.array([[[255, 0, 0], [230, 0, 0], [128, 128, 128], [255, 255, 255], [40, 90, 120], [219, 104, 104]]],
                      np.uint8)
    np.testing.assert_allclose(target_colour_weight(images), [[1.0, 230 / 255, 0.0, 0.0, 0.0, 115 / 255]], rtol=1e-6)


class StubDualSystemEnv:
    """What a refresh controller reads of DualSystem-v0: its observed features and its baseline_action."""

    steps_choices = None

    def __init__(self, features: tuple[str, ...]) -> None:
        self.features, self.unwrapped = features, self

    def baseline_action(self, refresh: bool, steps: int | None = None) -> int:
        return int(refresh)


def test_event_triggered_refresh_counts_its_period_from_the_last_refresh():
    Env = partial(StubDualSystemEnv, ("a", "largest_step_change"))

    controller = parse_controller("refresh:every=3,change=0.5")
    controller.reset(Env())
    changes = [0, 0.9, 0, 0, 0, 0, 0, 0.6, 0.7]  # a change at call 1 moves the next periodic refresh to call 4
    assert [controller.act(np.array([0.0, c])) for c in changes] == [1, 1, 0, 0, 1, 0, 0, 1, 1]
    with pytest.raises(ValueError, match="change must be a pixel change in \\(0, 1\\), got 2"):
        parse_controller("refresh:every=3,change=2")
    with pytest.raises(ValueError, match="change= needs an env that observes largest_step_change"):
        parse_controller("refresh:every=3,change=0.5").reset(gym.make("CartPole-v1"))
    both = parse_controller("refresh:every=5,change=0.5,target_change=0.2")
    both.reset(StubDualSystemEnv(("largest_step_change", "largest_step_target_change")))
    observations = [(0, 0), (0.6, 0), (0, 0), (0, 0.3), (0.4, 0.1), (0, 0)]
    assert [both.act(np.array(o)) for o in observations] == [1, 1, 0, 1, 0, 0]
    with pytest.raises(ValueError, match="target_change must be a pixel change in \\(0, 1\\), got -1"):
        parse_controller("refresh:every=3,target_change=-1")
    with pytest.raises(ValueError, match="target_change= needs an env that observes largest_step_target_change"):
        parse_controller("refresh:every=3,target_change=0.5").reset(gym.make("CartPole-v1"))
