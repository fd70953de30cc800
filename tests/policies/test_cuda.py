"""The GPU path (skipped without CUDA): a dual system on CUDA computes what it computes on the CPU, and the
asynchronous runner's hand-off of System 2's tokens from the worker's CUDA stream to System 1 on the default stream
delivers every result whole and on schedule."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env
from torch import nn

import adaptstep  # noqa: F401
from adaptstep.agents.controllers import parse_controller
from adaptstep.evaluation import play_episode as harness_episode
from adaptstep.policies.dual_system import DualSystemConfig, DualSystemPolicy
from adaptstep.policies.runner import PolicyExecution, measure_system2_cost, run_policy_episode
from adaptstep.policies.task import make_robot_env
from adaptstep.policies.video_model import VideoDiffusion, VideoModelConfig

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(autouse=True)
def full_float32():
    """TF32 convolutions and matrix products would differ from the CPU's float32 by ~1e-3."""
    matmul, convolution = torch.get_float32_matmul_precision(), torch.backends.cudnn.allow_tf32
    torch.set_float32_matmul_precision("highest")
    torch.backends.cudnn.allow_tf32 = False
    yield
    torch.set_float32_matmul_precision(matmul)
    torch.backends.cudnn.allow_tf32 = convolution


def untrained_dual_system(device: str) -> DualSystemPolicy:
    """The same randomly initialised reacher-sized dual system (32×32 images, 6 proprio, 2 actions) on ``device``."""
    torch.manual_seed(0)
    video = VideoDiffusion(VideoModelConfig(image_size=32, width=16, channel_mults=(1, 2))).requires_grad_(False)
    config = DualSystemConfig(proprio_dim=6, action_dim=2, image_size=32, width=32, depth=2, heads=2)
    return DualSystemPolicy(config, video).to(device).eval()


class Recorder(gym.Wrapper):
    def __init__(self, env):
        super().__init__(env)
        self.actions = []

    def step(self, action):
        self.actions.append(np.array(action))
        return self.env.step(action)


@pytest.fixture(scope="module")
def env():
    env = make_robot_env("reacher", image_size=32)
    yield env
    env.close()


def test_both_systems_on_cuda_match_the_cpu():
    cpu, gpu = untrained_dual_system("cpu"), untrained_dual_system("cuda")
    assert gpu.device.type == "cuda"
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (2, cpu.system2_frames, 32, 32, 3), dtype=np.uint8)
    proprio = rng.normal(size=(2, 2, 6)).astype(np.float32)
    cpu_tokens, gpu_tokens = cpu.system2(frames), gpu.system2(frames)
    assert gpu_tokens.device.type == "cuda"
    np.testing.assert_allclose(gpu_tokens.cpu().numpy(), cpu_tokens.numpy(), rtol=1e-4, atol=1e-4)
    cpu_chunks, cpu_nfe = cpu.system1(cpu_tokens, proprio, seed=7)
    gpu_chunks, gpu_nfe = gpu.system1(gpu_tokens, proprio, seed=7)  # the noise is drawn on the CPU from the seed
    assert cpu_nfe == gpu_nfe and isinstance(gpu_chunks, np.ndarray)
    np.testing.assert_allclose(gpu_chunks, cpu_chunks, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("asynchronous", [False, True])
def test_a_cuda_episode_starts_as_the_cpu_one(env, asynchronous):
    """The first two calls see the same frames on both devices, so they execute the same 8 actions."""
    episodes = []
    for device in ("cpu", "cuda"):
        recorder = Recorder(env)
        execution = PolicyExecution(untrained_dual_system(device), recorder, asynchronous=asynchronous)
        summary = run_policy_episode(execution, seed=5, refresh_every=3)
        execution.close()
        episodes.append((summary, np.array(recorder.actions)))
    (cpu, cpu_actions), (gpu, gpu_actions) = episodes
    assert (gpu.calls, gpu.steps, gpu.system2_calls, gpu.compute) == (cpu.calls, cpu.steps, cpu.system2_calls,
                                                                      cpu.compute) == (13, 50, 5, 18.0)
    np.testing.assert_allclose(gpu_actions[:8], cpu_actions[:8], rtol=1e-4, atol=1e-5)
    assert gpu.system1_seconds > 0 and gpu.system2_seconds > 0


class SlowCudaDualSystem(nn.Module):
    """System 2 runs ``work`` large matrix products on the current CUDA stream and returns tokens that all equal
    the index of its call (exact in float32: every product of the all-2⁻¹¹ matrix with itself is that matrix);
    System 1 reads its tokens on the default stream and records the index and whether every entry held it."""

    def __init__(self, work: int = 40) -> None:
        super().__init__()
        self.config = type("Config", (), {"obs_horizon": 2, "pred_horizon": 8, "action_steps": 4, "image_size": 32,
                                          "proprio_dim": 6, "sampling_steps": 1, "solver": "ddim"})()
        self.weight = nn.Parameter(torch.zeros(1, device="cuda"))
        self.work, self.system2_frames, self.calls, self.tags_used, self.whole = work, 3, 0, [], []

    def system2(self, frames):
        tag, self.calls = self.calls, self.calls + 1
        x = torch.full((2048, 2048), 2.0 ** -11, device="cuda")
        for _ in range(self.work):
            x = x @ x
        return (x[:4, :8] * 2 ** 11 - 1 + tag)[None]

    def system1(self, tokens, proprio, steps, solver, seed):
        tag = tokens[0, 0, 0]
        self.tags_used.append(int(tag.item()))
        self.whole.append(bool((tokens == tag).all().item()))
        return torch.zeros(1, 8, 2, device="cuda"), steps


@pytest.mark.parametrize("every", [1, 4])
def test_the_asynchronous_runner_hands_whole_tokens_across_cuda_streams(env, every):
    policy = SlowCudaDualSystem()
    execution = PolicyExecution(policy, env, asynchronous=True)
    summary = run_policy_episode(execution, seed=0, refresh_every=every)
    assert execution._stream is not None  # System 2 ran on the worker's own stream
    execution.close()
    assert policy.tags_used == [max(t // every - 1, 0) for t in range(summary.calls)]
    assert all(policy.whole)
    assert summary.system2_calls == policy.calls == -(-summary.calls // every)
    assert summary.blocked_seconds < summary.system2_seconds  # System 2 overlapped the control loop


def test_dual_system_env_on_cuda(env):
    policy = untrained_dual_system("cuda")
    assert measure_system2_cost(policy, repeats=2) > 0
    for asynchronous in (False, True):
        dual = gym.make("adaptstep/DualSystem-v0", policy=policy, system2_cost=2.0, asynchronous=asynchronous)
        check_env(dual.unwrapped, skip_render_check=True)
        row = harness_episode(dual, parse_controller("refresh:every=4"), seed=1)
        assert row["cost"] == pytest.approx(13 + 4 * 2.0) and np.isfinite(row["return"])
        dual.close()


def test_bench_robot_on_cuda_writes_its_own_section(tmp_path):
    from adaptstep.cli import main
    from adaptstep.policies.demos import make_demos, save_demos
    from adaptstep.policies.train import train_robot_policy

    demos = save_demos(make_demos("reacher", episodes=2, image_size=32, seed=0), tmp_path / "demos.hdf5")
    tiny = {"steps": 3, "batch_size": 4, "device": "cpu", "progress": False}  # untrained: the pipeline only
    baseline = train_robot_policy("diffusion-policy", demos, tmp_path / "dp.pt", **tiny)
    dual = train_robot_policy("dual-system", demos, tmp_path / "dual.pt", video_steps=2, video_config={"width": 8},
                              **tiny)
    report = tmp_path / "BENCHMARKS.md"
    report.write_text("<!-- bench:robot-reacher -->\nthe CPU table\n<!-- /bench:robot-reacher -->\n")
    main(["bench", "robot", "--diffusion-policy", str(baseline), "--dual-system", str(dual), "--refresh", "2",
          "--episodes", "1", "--device", "cuda", "--out", str(report), "--plot", str(tmp_path / "robot.png")])
    text = report.read_text()
    assert "the CPU table" in text and text.count("<!-- bench:robot-reacher-cuda -->") == 1
    assert f"## Robot policies: reacher on {torch.cuda.get_device_name()}" in text
    assert f"policies on {torch.cuda.get_device_name()} (torch" in text and (tmp_path / "robot.png").is_file()
