"""A minimal family defined here, outside the package: the contract (``AdaptiveEnv``), the registry, the harness
and the ``Benchmark`` base are all a new family needs (no change to ``agents/``, ``bench/`` or the CLI).

The family: dy/dt = -y from y(0) = y0 to t = 1 by explicit Euler, the env choosing every step's size h.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import gymnasium as gym
import numpy as np
import pandas as pd
import pytest
from gymnasium import spaces
from gymnasium.utils.env_checker import check_env

from adaptstep.core.bench import Benchmark
from adaptstep.core.contract import AdaptiveEnv, Metric, check_parameters
from adaptstep.core.registry import Family, benchmarks, family_of, load_object, register_family
from adaptstep.core.report import markdown_table
from adaptstep.evaluation import evaluate, summarize

ENV_ID = "adaptstep-test/EulerDecay-v0"
STEP_RANGE = (0.01, 0.5)
CONTROLLERS = ["fixed:h=0.1", "fixed:h=0.25"]


class EulerDecayEnv(AdaptiveEnv):
    """Integrate dy/dt = -y from y0 (drawn in [0.5, 1.5] per seed) to ``t_end`` by explicit Euler.

    Action: ``Box(0.01, 0.5, (1,))``, the step size h (clipped; the last step ends at ``t_end``). Observation:
    (t, y). Reward: minus the final error at the end, minus ``cost_weight`` per step. Info: ``cost`` (steps),
    ``error`` (|y - y0·e^{-t}|), ``y0``, ``failure``.
    """

    metadata = {"render_modes": []}
    metrics = (Metric("error", description="|y(t_end) - y0·exp(-t_end)|"),)
    cost_unit = "derivative evaluations"
    summary_keys = ("y0",)

    def __init__(self, t_end: float = 1.0, cost_weight: float = 1e-3, render_mode: str | None = None) -> None:
        self.t_end, self.cost_weight, self.render_mode = t_end, cost_weight, render_mode
        self.action_space = spaces.Box(*map(np.float32, STEP_RANGE), shape=(1,), dtype=np.float32)
        self.observation_space = spaces.Box(np.zeros(2, np.float32), np.array([t_end, 1.5], np.float32))

    def baseline_action(self, **parameters: Any) -> np.ndarray:
        """The action of a fixed step size ``h`` (``fixed:h=0.1``)."""
        check_parameters(self, parameters, ("h",))
        return np.array([parameters["h"]], dtype=np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.y0 = float(self.np_random.uniform(0.5, 1.5))
        self.t, self.y, self.steps = 0.0, self.y0, 0
        return self._observation(), self._info()

    def step(self, action: Any):
        h = min(float(np.clip(action, *STEP_RANGE)[0]), self.t_end - self.t)
        self.y, self.t, self.steps = self.y - h * self.y, self.t + h, self.steps + 1
        done = self.t >= self.t_end - 1e-12
        info = self._info()
        reward = -self.cost_weight - (info["error"] if done else 0.0)
        return self._observation(), reward, done, False, info

    def _observation(self) -> np.ndarray:
        return np.array([self.t, self.y], dtype=np.float32)

    def _info(self) -> dict[str, Any]:
        return {"cost": self.steps, "error": abs(self.y - self.y0 * math.exp(-self.t)), "y0": self.y0,
                "failure": None}


class DecayBenchmark(Benchmark):
    """Euler decay: the final error against the steps of fixed step sizes."""

    name = "decay"
    default_episodes = 3

    def measure(self, args: argparse.Namespace) -> pd.DataFrame:
        return evaluate(ENV_ID, CONTROLLERS, episodes=args.episodes, seed=args.seed, progress=False)

    def render(self, table: pd.DataFrame, args: argparse.Namespace) -> str:
        summary = summarize(table)[["cost_median", "error_median", "pareto"]].reset_index()
        return f"Explicit Euler on dy/dt = -y, {args.episodes} episodes:\n\n{markdown_table(summary)}"


FAMILY = Family(name="decay", envs={ENV_ID: f"{__name__}:EulerDecayEnv"}, benchmark=f"{__name__}:DecayBenchmark",
                description="explicit Euler on dy/dt = -y: the step size of every step")


@pytest.fixture(scope="module", autouse=True)
def registered():
    register_family(FAMILY)


def test_the_family_is_registered_with_its_env_and_benchmark():
    assert family_of(ENV_ID) is FAMILY
    assert load_object(benchmarks()["decay"]) is DecayBenchmark
    env = gym.make(ENV_ID)
    assert env.spec.additional_wrappers[0].name == "WallTime"
    check_env(env.unwrapped)


def test_the_harness_runs_the_fixed_baseline_through_baseline_action():
    table = evaluate(ENV_ID, CONTROLLERS, episodes=3, seed=7, progress=False)
    assert list(table.columns) == ["controller", "seed", "steps", "return", "cost", "error", "y0", "wall_time",
                                   "episode_seconds", "failure", "warning"]
    for h, steps in ((0.1, 10), (0.25, 4)):
        rows = table[table["controller"] == f"fixed:h={h:g}"]
        assert list(rows["seed"]) == [7, 8, 9] and (rows["cost"] == steps).all() and (rows["steps"] == steps).all()
        exact = rows["y0"] * math.exp(-1)
        assert rows["error"].to_numpy() == pytest.approx(abs(rows["y0"] * (1 - h) ** steps - exact).to_numpy())
    assert table.groupby("controller")["y0"].apply(tuple).nunique() == 1  # every controller sees the same seeds
    summary = summarize(table)
    assert table.attrs["metrics"] == {"error": False}
    assert summary.loc["fixed:h=0.1", "error_median"] < summary.loc["fixed:h=0.25", "error_median"]
    assert summary["pareto"].all()  # more steps, less error: neither dominates


def test_the_benchmark_writes_its_section_and_table(tmp_path):
    benchmark = DecayBenchmark()
    parser = argparse.ArgumentParser()
    benchmark.add_arguments(parser)
    report = tmp_path / "BENCHMARKS.md"
    args = parser.parse_args(["--out", str(report), "--seed", "3"])
    table = benchmark.run(args)
    assert len(table) == 2 * DecayBenchmark.default_episodes and set(table["seed"]) == {3, 4, 5}
    text = report.read_text()
    assert text.count("<!-- bench:decay -->") == 1 and text.count("<!-- /bench:decay -->") == 1
    assert text.index("## decay") < text.index("Command: `adaptstep bench decay") < text.index("Machine: ")
    assert "| fixed:h=0.1 |" in text and "| fixed:h=0.25 |" in text
    saved = pd.read_csv(tmp_path / "benchmarks" / "decay.csv")  # beside the (absent) figure
    pd.testing.assert_frame_equal(summarize(saved, ENV_ID), summarize(table))  # directions from the registry
