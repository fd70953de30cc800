"""What a ThreeBody-v0 step costs, layer by layer, in CPU thread time over interleaved rounds.

Per step at a fixed η over whole episodes (100 intervals of 0.1 yr): the Numba Hermite loop called once per
interval, ``Integrator.evolve``, ``ThreeBodyProcess.advance``, ``gym.make``'s env step, and the native vector env at
N = 8 and 64 against the loop on the same N systems; force evaluations per CPU-second of Numba Hermite and REBOUND
IAS15; SB3 PPO steps per CPU-second with ``agents/ppo.yml`` on DummyVecEnv and on the native vector env. Every
timer runs once per round (``adaptstep.core.timing.interleaved``); the ratios are those of the minima.
"""

from __future__ import annotations

from collections.abc import Callable

import gymnasium as gym
import numpy as np
import pandas as pd
import stable_baselines3
import torch

from adaptstep.agents.training import check_hyperparameters, hyperparameters, training_vec_env
from adaptstep.core.timing import interleaved, thread_seconds
from adaptstep.threebody import YEAR, ThreeBodyProcess, make_integrator, reference_initial_conditions
from adaptstep.threebody.integrators.hermite import COLLISION_TIME, hermite_loop
from adaptstep.threebody.integrators.rebound_backend import IAS15Integrator

ENV_ID = "adaptstep/ThreeBody-v0"
INTERVAL = 0.1 * YEAR
STEPS = 100  # intervals per episode (the task spec's t_end = 10 yr)
TIMING_KWARGS = {"t_end": STEPS * INTERVAL, "interval": INTERVAL, "max_energy_error": 1e30}  # no early ends
LIMIT = 2_000_000


def system_seeds(n: int) -> list[int]:
    """The reference initial conditions of the vector env's N systems reset with seed 0 (single env: seeds 0…)."""
    env = gym.make_vec(ENV_ID, num_envs=n, vectorization_mode="vector_entry_point", **TIMING_KWARGS)
    _, info = env.reset(seed=0)
    return [int(seed) for seed in info["system_seed"]]


def loop_timer(seeds: list[int], eta: float) -> Callable[[], float]:
    """Seconds of ``hermite_loop`` called from Python once per interval, over every system's episode."""
    def timer() -> float:
        seconds = 0.0
        for seed in seeds:
            integrator = make_integrator("hermite", reference_initial_conditions(seed))
            state = [integrator.masses, integrator._x, integrator._v, integrator._a, integrator._j]
            t, tau = 0.0, integrator._tau

            def run() -> None:
                nonlocal t, tau
                for k in range(1, STEPS + 1):
                    t, tau, _, _ = hermite_loop(*state, t, tau, k * INTERVAL, eta, LIMIT, False, COLLISION_TIME)
            seconds += thread_seconds(run)
        return seconds
    return timer


def evolve_timer(seeds: list[int], eta: float) -> Callable[[], float]:
    """Seconds of ``Integrator.evolve`` over the same intervals (overshoot, as the env)."""
    def timer() -> float:
        seconds = 0.0
        for seed in seeds:
            integrator = make_integrator("hermite", reference_initial_conditions(seed))
            seconds += thread_seconds(lambda: [integrator.evolve(k * INTERVAL, eta, LIMIT, exact=False)
                                               for k in range(1, STEPS + 1)])
        return seconds
    return timer


def advance_timer(seeds: list[int], eta: float) -> Callable[[], float]:
    """Seconds of ``ThreeBodyProcess.advance_to`` over the same intervals."""
    def timer() -> float:
        seconds = 0.0
        for seed in seeds:
            process = ThreeBodyProcess(reference_initial_conditions(seed))
            seconds += thread_seconds(lambda: [process.advance_to(k * INTERVAL, eta, exact=False)
                                               for k in range(1, STEPS + 1)])
        return seconds
    return timer


def env_timer(episodes: int, eta: float) -> Callable[[], float]:
    """Seconds of ``gym.make(ENV_ID).step`` (through its wrappers) over episodes reset with seeds 0, 1, …."""
    env = gym.make(ENV_ID, **TIMING_KWARGS)
    action = np.array([np.log10(eta)], dtype=np.float32)

    def timer() -> float:
        seconds = 0.0
        for seed in range(episodes):
            env.reset(seed=seed)
            seconds += thread_seconds(lambda: [env.step(action) for _ in range(STEPS)])
        return seconds
    return timer


def vector_timer(n: int, eta: float) -> Callable[[], float]:
    """Seconds of the native vector env's ``step`` over one episode of its N systems (reset with seed 0)."""
    env = gym.make_vec(ENV_ID, num_envs=n, vectorization_mode="vector_entry_point", **TIMING_KWARGS)
    actions = np.full((n, 1), np.log10(eta), dtype=np.float32)

    def timer() -> float:
        env.reset(seed=0)
        return thread_seconds(lambda: [env.step(actions) for _ in range(STEPS)])
    return timer


def step_timings(etas: tuple[float, ...] = (0.01, 0.001), episodes: int = 5, vector_sizes: tuple[int, ...] = (8, 64),
                 rounds: int = 5) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per-step seconds of every layer, and the ratios of the targets.

    Returns:
        The timings (``eta``, ``layer``, ``systems``, ``min_us``, ``median_us``: µs per system-step) and the ratios
        (env step / ``Integrator.evolve``, vector env / loop on the same systems), of the minima and the medians.
    """
    timers, units, layers = {}, {}, {}
    single_seeds = system_seeds(episodes)  # system i of the vector env reset with seed 0 = the single env of seed i
    for eta in etas:
        for layer, timer in (("numba loop", loop_timer(single_seeds, eta)), ("Integrator.evolve",
                                                                            evolve_timer(single_seeds, eta)),
                             ("ThreeBodyProcess.advance", advance_timer(single_seeds, eta)),
                             ("env step (gym.make)", env_timer(episodes, eta))):
            timers[(eta, layer)], units[(eta, layer)], layers[(eta, layer)] = timer, episodes * STEPS, episodes
        for n in vector_sizes:
            seeds = system_seeds(n)
            timers[(eta, f"numba loop, N={n}")] = loop_timer(seeds, eta)
            timers[(eta, f"vector env, N={n}")] = vector_timer(n, eta)
            for layer in (f"numba loop, N={n}", f"vector env, N={n}"):
                units[(eta, layer)], layers[(eta, layer)] = n * STEPS, n
    for timer in timers.values():  # compile and warm up
        timer()
    table = interleaved(timers, rounds, units)
    table[["eta", "layer"]] = pd.DataFrame(table.pop("name").tolist(), index=table.index)
    table["systems"] = [layers[key] for key in zip(table["eta"], table["layer"])]
    table["min_us"], table["median_us"] = table.pop("min_seconds") * 1e6, table.pop("median_seconds") * 1e6
    indexed = table.set_index(["eta", "layer"])
    ratios = []
    for eta in etas:
        pairs = [("env step / Integrator.evolve", "env step (gym.make)", "Integrator.evolve", 1.2)]
        pairs += [(f"vector env / numba loop, N={n}", f"vector env, N={n}", f"numba loop, N={n}", 1.1 if n == 64 else None)
                  for n in vector_sizes]
        for name, top, bottom, target in pairs:
            ratios.append({"eta": eta, "ratio": name, "of_minima": indexed.loc[(eta, top), "min_us"]
                           / indexed.loc[(eta, bottom), "min_us"], "of_medians": indexed.loc[(eta, top), "median_us"]
                           / indexed.loc[(eta, bottom), "median_us"], "target": target})
    return table[["eta", "layer", "systems", "rounds", "min_us", "median_us"]], pd.DataFrame(ratios)


def force_timings(t_end: float = 1000.0, rounds: int = 5) -> pd.DataFrame:
    """Force evaluations per CPU-second of Numba Hermite (η = 0.01) and REBOUND IAS15 (ε = 1e-9) on reference IC 0.

    One ``evolve`` to ``t_end`` is timed, the integrator built beforehand. IAS15 runs without its counting
    callback; its evaluations come from one counted run.
    """
    system = reference_initial_conditions(0)
    evaluations = {"hermite": make_integrator("hermite", system).evolve(t_end, 0.01),
                   "rebound-ias15": make_integrator("rebound-ias15", system).evolve(t_end, 1e-9)}
    builders = {"hermite": (lambda: make_integrator("hermite", system), 0.01),
                "rebound-ias15": (lambda: IAS15Integrator(system, count_force_evaluations=False), 1e-9)}

    def timer(backend: str) -> Callable[[], float]:
        build, parameter = builders[backend]

        def run() -> float:
            integrator = build()
            return thread_seconds(lambda: integrator.evolve(t_end, parameter))
        return run
    timers = {backend: timer(backend) for backend in builders}
    table = interleaved(timers, rounds, units=evaluations).rename(columns={"name": "backend"})
    table["evaluations"] = table["backend"].map(evaluations)
    table["evaluations_per_cpu_second"] = 1.0 / table["min_seconds"]
    table["ratio_to_ias15"] = table["evaluations_per_cpu_second"] / table["evaluations_per_cpu_second"].iloc[-1]
    return table[["backend", "evaluations", "rounds", "evaluations_per_cpu_second", "ratio_to_ias15"]]


def ppo_timer(kind: str, n_envs: int, rollouts: int) -> Callable[[], float]:
    """Seconds of ``PPO.learn`` with ``agents/ppo.yml`` over ``rollouts`` rollouts of ``n_envs`` envs."""
    params = hyperparameters("ppo", ENV_ID)
    kwargs = check_hyperparameters({**params, "n_envs": n_envs}, "ppo", "agents/ppo.yml")
    env_kwargs = {"render_mode": None, **params.get("env_kwargs", {})}

    def timer() -> float:
        vec_env = training_vec_env(ENV_ID, n_envs, 0, env_kwargs, kind)
        model = stable_baselines3.PPO(params.get("policy", "MlpPolicy"), vec_env, seed=0, verbose=0, **kwargs)
        seconds = thread_seconds(lambda: model.learn(rollouts * kwargs["n_steps"] * n_envs))
        vec_env.close()
        return seconds
    return timer


def ppo_timings(configs: tuple[tuple[str, int], ...] = (("dummy", 1), ("dummy", 4), ("native", 4), ("native", 8),
                                                         ("native", 64)),
                rollouts: int = 1, rounds: int = 5) -> pd.DataFrame:
    """SB3 PPO (``agents/ppo.yml``) environment steps per CPU-second, rollouts and updates included."""
    torch.set_num_threads(1)
    n_steps = hyperparameters("ppo", ENV_ID)["n_steps"]
    timers = {config: ppo_timer(*config, rollouts) for config in configs}
    units = {config: rollouts * n_steps * config[1] for config in configs}
    table = interleaved(timers, rounds, units)
    table[["vec_env", "n_envs"]] = pd.DataFrame(table.pop("name").tolist(), index=table.index)
    table["steps"] = [units[config] for config in zip(table["vec_env"], table["n_envs"])]
    table["steps_per_cpu_second"] = 1.0 / table["min_seconds"]
    table["median_steps_per_cpu_second"] = 1.0 / table["median_seconds"]
    baseline = table.loc[(table["vec_env"] == "dummy") & (table["n_envs"] == 4), "steps_per_cpu_second"]
    table["vs_dummy_4"] = table["steps_per_cpu_second"] / float(baseline.iloc[0]) if len(baseline) else np.nan
    return table[["vec_env", "n_envs", "steps", "rounds", "steps_per_cpu_second", "median_steps_per_cpu_second",
                  "vs_dummy_4"]]
