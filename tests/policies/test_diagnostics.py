from types import SimpleNamespace

import numpy as np
import pytest

from adaptstep.policies.demos import Demonstrations
from adaptstep.policies.diagnostics import call_errors, jump_steps, target_sensitivity
from adaptstep.policies.task import target_colour_weight

CONFIG = SimpleNamespace(obs_horizon=2, pred_horizon=6, action_steps=3)


def demos(jumps=None, waits=None) -> Demonstrations:
    steps = 10
    images = np.arange(steps, dtype=np.uint8)[:, None, None, None].repeat(4, 1).repeat(4, 2).repeat(3, 3)
    actions = np.random.default_rng(0).uniform(-1, 1, (steps, 2)).astype(np.float32)
    return Demonstrations(images, np.arange(steps, dtype=np.float32)[:, None].repeat(3, 1), actions,
                          np.array([4, steps], dtype=np.int64), np.array([True, True]), target_jumps=jumps,
                          expert_waits=waits)


class ZeroPolicy:
    """A plain chunk policy that always predicts zeros."""
    config = CONFIG

    def predict(self, images, proprio, steps=10, solver="ddim", seed=None):
        return np.zeros((len(images), CONFIG.pred_horizon, 2), np.float32), steps


class FrameReadingDualSystem:
    """A dual system whose chunk repeats the expert action of the newest frame it was shown (frame value = step)."""
    config, system2_frames = CONFIG, 3

    def __init__(self, actions):
        self.actions, self.windows = actions, None

    def system2(self, frames):
        self.windows = frames[:, :, 0, 0, 0].astype(int)
        return self.windows

    def system1(self, tokens, proprio, steps=None, solver=None, seed=None):
        return np.repeat(self.actions[tokens[:, -1]][:, None], CONFIG.pred_horizon, axis=1), 5


def test_zero_policy_error_is_the_mean_expert_action_up_to_the_episode_end():
    data = demos()
    errors = call_errors(ZeroPolicy(), data, np.array([0, 2, 9]))
    expected = [np.abs(data.actions[0:3]).mean(), np.abs(data.actions[2:4]).mean(), np.abs(data.actions[9:10]).mean()]
    np.testing.assert_allclose(errors, expected, rtol=1e-6)


def test_windows_are_cut_as_in_training_or_still():
    data = demos()
    policy = FrameReadingDualSystem(data.actions)
    errors = call_errors(policy, data, np.array([1, 4, 6]))
    assert policy.windows.tolist() == [[0, 0, 1], [4, 4, 4], [4, 5, 6]]  # padded at each episode's start
    chunk_error = [np.abs(data.actions[s:s + 3] - data.actions[s]).mean() for s in (1, 4, 6)]
    np.testing.assert_allclose(errors, chunk_error, rtol=1e-6)
    call_errors(policy, data, np.array([6]), still=True)
    assert policy.windows.tolist() == [[6, 6, 6]]


def test_jump_steps_and_bad_input():
    jumps = np.array([0, 0, 1, 2, 0, 0, 0, 1, 1, 1])
    assert jump_steps(demos(jumps)).tolist() == [2, 3, 7]
    waits = np.array([0, 0, 1, 0, 0, 0, 0, 1, 1, 0], dtype=bool)  # the expert meets the 1st and 3rd jumps late
    assert jump_steps(demos(jumps, waits)).tolist() == [3, 9]
    waits[3] = True  # a wait up to an episode's end: its next episode's start is no reaction to a jump
    assert jump_steps(demos(jumps, waits)).tolist() == [9]
    with pytest.raises(ValueError, match="target_jumps"):
        jump_steps(demos())
    for bad in ([], [10], [-1]):
        with pytest.raises(ValueError, match="steps"):
            call_errors(ZeroPolicy(), demos(), np.array(bad, dtype=np.int64))


def test_main_refuses_demonstrations_without_a_jump(tmp_path):
    from adaptstep.policies.demos import save_demos
    from adaptstep.policies.diagnostics import main

    path = save_demos(demos(), tmp_path / "still.h5")
    with pytest.raises(ValueError, match="target_jumps"):
        main([str(path), str(tmp_path / "never-loaded.pt")])


class TargetFinder:
    """A dual system on 32×32 reacher images: System 2's token is the red target's pixel centroid in the newest
    frame, System 1's chunk repeats it (``reads=True``) or zeros (the tokens ignored)."""
    config = SimpleNamespace(obs_horizon=2, pred_horizon=6, action_steps=3, image_size=32)
    system2_frames = 2

    def __init__(self, reads: bool):
        self.reads = reads

    def system2(self, frames):
        red = target_colour_weight(frames[:, -1]) > 0.4
        return np.stack([np.argwhere(mask).mean(axis=0) for mask in red])

    def system1(self, tokens, proprio, steps=None, solver=None, seed=None):
        chunk = tokens if self.reads else np.zeros_like(tokens)
        return np.repeat(chunk[:, None], self.config.pred_horizon, axis=1), 5


def test_target_sensitivity_tells_a_head_that_reads_the_target_from_one_that_ignores_it():
    reads = target_sensitivity(TargetFinder(True), at=25, turns=(0.3, 0.6), seeds=range(3))
    ignores = target_sensitivity(TargetFinder(False), at=25, turns=(0.3, 0.6), seeds=range(3))
    for turn in (0.3, 0.6):
        assert reads[turn][0] > 0.5 and ignores[turn][0] == 0.0  # the centroid moves by pixels; zeros never do
        # at rest on the target, the expert's shoulder goal turns with it: torque kp·turn on one joint of two
        assert reads[turn][1] == ignores[turn][1] == pytest.approx(turn / 2, abs=0.01)
    assert reads[0.6][0] > reads[0.3][0]
    with pytest.raises(ValueError, match="dual system"):
        target_sensitivity(ZeroPolicy())
