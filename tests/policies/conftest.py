"""Fixtures shared by the robot tests."""

from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

from adaptstep.cli import main
from adaptstep.policies.train import train_robot_policy


@pytest.fixture
def tiny_pipeline(tmp_path):
    """A callable ``(task, demos, episodes) -> BENCHMARKS text``: untrained tiny Diffusion Policy and dual system
    on the demonstrations file ``demos``, ``check_env`` on ``DualSystem-v0`` with ``task``, and a bench of both (the
    dual system at k = 4) into ``tmp_path`` (its rows in ``tmp_path / "p.csv"``)."""
    def run(task: str, demos: Path, episodes: int = 1) -> str:
        tiny = dict(steps=2, batch_size=4, device="cpu", progress=False)  # untrained: the pipeline only
        baseline = train_robot_policy("diffusion-policy", demos, tmp_path / "dp.pt",
                                      config={"images": False, "action_steps": 8, "down_dims": (16, 32)}, **tiny)
        dual = train_robot_policy("dual-system", demos, tmp_path / "dual.pt", video_steps=2,
                                  video_config={"width": 8}, config={"action_steps": 8}, **tiny)
        env = gym.make("adaptstep/DualSystem-v0", policy=str(dual), task=task, system2_cost=2.0, device="cpu")
        check_env(env.unwrapped, skip_render_check=True)
        env.close()
        report = tmp_path / "BENCHMARKS.md"
        main(["bench", "robot", "--task", task, "--diffusion-policy", str(baseline), "--dual-system", str(dual),
              "--refresh", "4", "--runner", "sync", "--episodes", str(episodes), "--device", "cpu", "--out",
              str(report), "--plot", str(tmp_path / "p.png")])
        text = report.read_text()
        assert f"<!-- bench:robot-{task} -->" in text
        assert "| Diffusion Policy |" in text and "| dual system, k = 4 |" in text
        return text

    return run
