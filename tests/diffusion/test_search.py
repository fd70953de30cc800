"""Searched schedules: the GITS dynamic programme against brute force, the evolution's reproducibility and elitism."""

import itertools

import numpy as np
import pytest
import torch

from adaptstep.diffusion.process import load_sampler_model, noise_and_reference
from adaptstep.diffusion.search import (
    HAND_SCHEDULES,
    SEARCH_SEED_OFFSET,
    _ddim_costs,
    _SearchBatches,
    _teacher_states,
    check_search,
    dp_path,
    dp_search,
    evolutionary_search,
    schedule_error,
    searched_schedule,
    step_orders,
)
from adaptstep.nn.solvers import DPMSolverPlusPlus
from adaptstep.nn.timesteps import make_timesteps

TINY = {"batch_size": 16, "batches": 2, "reference_steps": 16}
SEARCH_SEEDS = [SEARCH_SEED_OFFSET + k for k in range(TINY["batches"])]


def _brute_force(cost: np.ndarray, steps: int, coeff: float) -> tuple[float, list[int]]:
    """Every path 0 < … < G with ``steps`` jumps, scored Σ_m coeff^m C[p_m][p_{m+1}]."""
    last = len(cost) - 1
    best = (np.inf, [])
    for inner in itertools.combinations(range(1, last), steps - 1):
        path = [0, *inner, last]
        value = sum(coeff**m * cost[a, b] for m, (a, b) in enumerate(zip(path, path[1:])))
        best = min(best, (value, path))
    return best


@pytest.mark.parametrize("coeff", [0.8, 1.0, 1.15])
@pytest.mark.parametrize("steps", [1, 2, 3, 5, 6])
def test_dp_path_agrees_with_brute_force(steps, coeff):
    cost = np.random.default_rng(steps).uniform(0.1, 1.0, (7, 7))
    path = dp_path(cost, steps, coeff)
    value, expected = _brute_force(cost, steps, coeff)
    assert path == expected
    assert sum(coeff**m * cost[a, b] for m, (a, b) in enumerate(zip(path, path[1:]))) == pytest.approx(value)


@pytest.mark.parametrize(("solver", "nfe"), [("dpmpp2m", 4), ("dpmpp3m", 6), ("ddim", 3)])
def test_dp_search_returns_nfe_decreasing_grid_times_with_pinned_endpoints(solver, nfe):
    _, schedule = load_sampler_model("gmm-2d")
    result = dp_search("gmm-2d", nfe, solver, grid_points=13, **TINY)
    grid = make_timesteps("edm", schedule, 12).tolist()
    assert len(result.times) == nfe + 1 and all(b < a for a, b in zip(result.times, result.times[1:]))
    assert result.times[0] == schedule.t_max and result.times[-1] == schedule.t_min
    assert set(result.times) <= set(grid) and result.orders == step_orders(solver, nfe)
    assert result.objective == schedule_error("gmm-2d", result.times, result.orders, SEARCH_SEEDS, 16, 16)
    assert 1 <= result.evaluations <= 9 and result.search_nfe > 0 and result.seconds > 0


def test_the_coefficient_sweep_is_never_worse_than_gits_default():
    sweep = dp_search("gmm-2d", 4, "dpmpp2m", grid_points=13, **TINY)
    single = dp_search("gmm-2d", 4, "dpmpp2m", grid_points=13, coeff=1.15, **TINY)
    assert single.evaluations == 1 and sweep.objective <= single.objective


def test_the_dp_cost_is_the_ddim_jump_error_against_an_accurate_teacher():
    data = _SearchBatches("gmm-2d", 16, 2, 64, "exact")
    grid = make_timesteps("logsnr_uniform", data.schedule, 6).tolist()
    states, nfe = _teacher_states(data, grid, 60)  # 10 RK4 steps per λ-uniform interval
    assert nfe == 4 * 60 and float((states[-1] - data.reference).abs().max()) < 2e-5
    cost = _ddim_costs(data, grid, states)
    for i, j in [(0, 1), (0, 6), (2, 5), (5, 6)]:
        jump = DPMSolverPlusPlus(data.denoiser, data.schedule).step(states[i], grid[i], grid[j], 1)
        assert cost[i, j] == pytest.approx(float((jump - states[j]).pow(2).mean().sqrt()), rel=1e-9)
    assert np.all(np.isinf(np.tril(cost)[np.tril_indices(7)]))


def test_search_batches_are_the_search_seeds_and_disjoint_from_env_seeds():
    data = _SearchBatches("gmm-2d", 16, 2, 16, "exact")
    expected = torch.cat([noise_and_reference("gmm-2d", 16, seed, 16)[0] for seed in SEARCH_SEEDS])
    assert torch.equal(data.x, expected)
    assert min(SEARCH_SEEDS) >= 2**31  # the env draws noise seeds in [0, 2**31)


def _hand_objectives(nfe: int, solver: str) -> dict[str, float]:
    _, schedule = load_sampler_model("gmm-2d")
    orders = step_orders(solver, nfe)
    return {name: schedule_error("gmm-2d", make_timesteps(name, schedule, nfe).tolist(), orders, SEARCH_SEEDS, 16, 16)
            for name in HAND_SCHEDULES}


def test_evolution_is_reproducible_elitist_and_improves_on_the_hand_schedules():
    options = {"population": 8, "generations": 6, **TINY}
    result = evolutionary_search("gmm-2d", 5, "dpmpp2m", seed=3, **options)
    again = evolutionary_search("gmm-2d", 5, "dpmpp2m", seed=3, **options)
    assert (again.times, again.objective) == (result.times, result.objective)
    assert evolutionary_search("gmm-2d", 5, "dpmpp2m", seed=4, **options).times != result.times
    best_hand = min(_hand_objectives(5, "dpmpp2m").values())
    assert result.objective < 0.9 * best_hand
    assert result.objective == schedule_error("gmm-2d", result.times, result.orders, SEARCH_SEEDS, 16, 16)
    assert result.evaluations == 8 + 6 * 8 and result.search_nfe == 2 * (4 * 16 + result.evaluations * 5)
    assert all(b < a for a, b in zip(result.times, result.times[1:])) and len(result.times) == 6


def test_evolution_without_generations_keeps_the_best_hand_schedule():
    result = evolutionary_search("gmm-2d", 4, "dpmpp3m", population=4, generations=0, **TINY)
    assert result.objective == pytest.approx(min(_hand_objectives(4, "dpmpp3m").values()), rel=1e-9)


def test_given_orders_are_used():
    result = evolutionary_search("gmm-2d", 3, "dpmpp3m", orders=(1, 1, 2), population=4, generations=1, **TINY)
    assert result.orders == (1, 1, 2)
    assert result.objective == schedule_error("gmm-2d", result.times, (1, 1, 2), SEARCH_SEEDS, 16, 16)


@pytest.mark.parametrize("method", ["evolution", "dp"])
def test_one_nfe_is_the_single_step(method):
    _, schedule = load_sampler_model("gmm-2d")
    result = searched_schedule(method, "gmm-2d", 1, **TINY)
    assert result.times == (schedule.t_max, schedule.t_min) and result.orders == (1,) and result.evaluations == 1


def test_searched_schedule_is_cached():
    first = searched_schedule("dp", "gmm-2d", 3, "dpmpp2m", grid_points=9, **TINY)
    assert searched_schedule("dp", "gmm-2d", 3, "dpmpp2m", grid_points=9, **TINY) is first


@pytest.mark.parametrize(("call", "match"), [
    (lambda: searched_schedule("random", "gmm-2d", 3), "method must be one of"),
    (lambda: searched_schedule("dp", "gmm-2d", 3, "heun"), "solver must be one of"),
    (lambda: searched_schedule("dp", "gmm-2d", 3, generations=2), "options of search 'dp' must be among"),
    (lambda: searched_schedule("evolution", "gmm-2d", 0), "nfe must be an int >= 1"),
    (lambda: searched_schedule("dp", "gmm-3d", 3), "model must be one of"),
    (lambda: dp_search("gmm-2d", 6, grid_points=6, **TINY), "grid_points must be >= nfe \\+ 1"),
    (lambda: dp_search("gmm-2d", 3, grid="cosine", **TINY), "grid must be one of"),
    (lambda: dp_search("gmm-2d", 3, coeff=(), **TINY), "coeff must be a number > 0"),
    (lambda: evolutionary_search("gmm-2d", 3, population=3, **TINY), "population must be >= 4"),
    (lambda: evolutionary_search("gmm-2d", 3, mutation_scale=0.0, **TINY), "mutation_scale"),
    (lambda: evolutionary_search("gmm-2d", 3, orders=(1, 3, 2), **TINY), "orders must hold"),
    (lambda: evolutionary_search("gmm-2d", 3, batches=0), "batches must be an int >= 1"),
    (lambda: evolutionary_search("gmm-2d", 3, offspring=0, **TINY), "offspring must be an int >= 1"),
    (lambda: dp_search("gmm-2d", 3, third_order="taylor", **TINY), "third_order must be"),
    (lambda: dp_path(np.ones((4, 4)), 4), "steps must be <= 3"),
    (lambda: dp_path(np.ones((4, 4)), 2, coeff=0.0), "coeff must be finite and > 0"),
    (lambda: dp_path(np.ones((4, 3)), 2), "cost must be a square matrix"),
])
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_search_options_must_have_their_defaults_type():
    check_search("dp", "dpmpp2m", {"coeff": [1.0, 1.1], "grid_points": 31})
    with pytest.raises(ValueError, match="option coeff of search 'dp' must be a number"):
        check_search("dp", "dpmpp2m", {"coeff": "abc"})
    with pytest.raises(ValueError, match="option generations of search 'evolution' must be a number"):
        check_search("evolution", "dpmpp2m", {"generations": True})
