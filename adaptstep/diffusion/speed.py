"""What a DiffusionSampler-v0 step costs beyond its one denoiser call, in CPU thread time over interleaved rounds."""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pandas as pd
import torch

from adaptstep.core.timing import interleaved, thread_seconds
from adaptstep.diffusion.process import load_sampler_model, noise_and_reference

ENV_ID = "adaptstep/DiffusionSampler-v0"


def env_step_timer(model: str, batch_size: int, nfe: int) -> Callable[[], float]:
    """Seconds of ``gym.make(ENV_ID).step`` over an episode's steps but the last (which scores the endpoint),
    at equal steps in λ; episodes reset with seeds 0, 1, … in turn."""
    env = gym.make(ENV_ID, model=model, batch_size=batch_size, nfe=nfe)
    seeds = iter(range(10**9))

    def timer() -> float:
        env.reset(seed=next(seeds))
        seconds = 0.0
        for k in range(nfe - 1):
            action = np.array([1.0 / (nfe - k)], dtype=np.float32)
            seconds += thread_seconds(lambda: env.step(action))
        env.step(np.array([1.0], dtype=np.float32))  # the scored last step, untimed
        return seconds
    return timer


def denoiser_timer(model: str, batch_size: int, calls: int) -> Callable[[], float]:
    """Seconds of ``calls`` denoiser calls on a batch of the env's noise."""
    denoiser, _ = load_sampler_model(model)
    x, _ = noise_and_reference(model, batch_size, 0, 128)
    t = torch.tensor(0.5, dtype=x.dtype, device=x.device)

    def timer() -> float:
        with torch.no_grad():
            return thread_seconds(lambda: [denoiser.predict_x0(x, t) for _ in range(calls)])
    return timer


def step_overhead_timings(model: str = "digits", batch_size: int = 128, nfe: int = 10,
                          rounds: int = 5) -> pd.DataFrame:
    """ms per env step and per denoiser call (min and median of interleaved rounds) and the env's overhead.

    Returns:
        One row: ``env_step_ms``, ``model_call_ms`` (minima), their medians, ``overhead`` = env step / call − 1 of
        the minima and ``overhead_of_medians``.
    """
    torch.set_num_threads(1)
    timers = {"env": env_step_timer(model, batch_size, nfe), "model": denoiser_timer(model, batch_size, nfe - 1)}
    for timer in timers.values():  # warm up
        timer()
    table = interleaved(timers, rounds, units={"env": nfe - 1, "model": nfe - 1}).set_index("name")
    env, call = table.loc["env"], table.loc["model"]
    return pd.DataFrame([{"model": model, "batch_size": batch_size, "nfe": nfe, "rounds": rounds,
                          "env_step_ms": 1e3 * env["min_seconds"], "model_call_ms": 1e3 * call["min_seconds"],
                          "env_step_median_ms": 1e3 * env["median_seconds"],
                          "model_call_median_ms": 1e3 * call["median_seconds"],
                          "overhead": env["min_seconds"] / call["min_seconds"] - 1,
                          "overhead_of_medians": env["median_seconds"] / call["median_seconds"] - 1}])


def vector_step_timer(model: str, batch_size: int, nfe: int, n: int) -> Callable[[], float]:
    """Seconds of the vector env's ``step`` over an episode's steps but the last, N episodes at once."""
    env = gym.make_vec(ENV_ID, num_envs=n, vectorization_mode="vector_entry_point", model=model,
                       batch_size=batch_size, nfe=nfe)
    seeds = iter(range(0, 10**9, n))

    def timer() -> float:
        env.reset(seed=next(seeds))
        seconds = 0.0
        for k in range(nfe - 1):
            actions = np.full((n, 1), 1.0 / (nfe - k), dtype=np.float32)
            seconds += thread_seconds(lambda: env.step(actions))
        env.step(np.ones((n, 1), dtype=np.float32))  # the scored last step, untimed
        return seconds
    return timer


def vector_overhead_timings(model: str = "digits", batch_size: int = 128, nfe: int = 10, n: int = 8,
                            rounds: int = 5) -> pd.DataFrame:
    """ms per episode-step of the vector env at N episodes and of one single env, against one denoiser call.

    Returns:
        One row per variant (``single env``, ``vector env, N=n``): ``ms_per_episode_step`` (minimum over the rounds),
        its median, and ``vs_model_call`` (ratio of the minima to one denoiser call on ``batch_size`` samples).
    """
    torch.set_num_threads(1)
    timers = {"single env": env_step_timer(model, batch_size, nfe),
              f"vector env, N={n}": vector_step_timer(model, batch_size, nfe, n),
              "model call": denoiser_timer(model, batch_size, nfe - 1)}
    units = {"single env": nfe - 1, f"vector env, N={n}": (nfe - 1) * n, "model call": nfe - 1}
    for timer in timers.values():  # warm up
        timer()
    table = interleaved(timers, rounds, units).set_index("name")
    call = table.loc["model call", "min_seconds"]
    return pd.DataFrame([{"variant": name, "rounds": rounds, "ms_per_episode_step": 1e3 * row["min_seconds"],
                          "median_ms": 1e3 * row["median_seconds"], "vs_model_call": row["min_seconds"] / call}
                         for name, row in table.iterrows()])
