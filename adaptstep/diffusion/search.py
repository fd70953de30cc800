"""Searched timestep schedules for multistep DPM-Solver++ at equal NFE: AutoDiffusion-style evolution and
GITS-style dynamic programming.

Objective: the mean endpoint RMSE, over ``batches`` search noise batches, of the solver's samples against the
reference PF-ODE solutions from the same noise (``process.noise_and_reference``). AutoDiffusion (Li et al.,
ICCV 2023) scores candidates by the FID of their samples; the exact endpoint error stands in for it here (it is
what ``adaptstep/DiffusionSampler-v0`` rewards). Search batch k uses noise seed ``SEARCH_SEED_OFFSET + k``
= 2³¹ + k, disjoint from the env's noise seeds in [0, 2³¹), so a searched schedule is scored on noise it never saw.

A schedule of n = NFE steps is parameterised by n gap logits z: the λ gaps are (λ(t_min) − λ(t_max))·softmax(z),
so the n − 1 interior λ points are strictly increasing and the endpoints stay exactly t_max and t_min.

The search can overfit its noise: on gmm-64d, 3M at 10 NFE (batch 128), evolution scored 0.067 on 8 search
batches but 0.082 on held-out seeds 0…7, and 0.052 / 0.061 with 16 batches; hence the default of 16 batches.
"""

from __future__ import annotations

import functools
import inspect
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from adaptstep.core.settings import require_int
from adaptstep.diffusion.metrics import endpoint_rmse
from adaptstep.diffusion.process import load_sampler_model, noise_and_reference
from adaptstep.diffusion.reference import reference_solution
from adaptstep.nn.solvers import MULTISTEP_SOLVERS, DPMSolverPlusPlus, multistep_orders
from adaptstep.nn.timesteps import TIMESTEPS, make_timesteps

SEARCH_SEED_OFFSET = 2**31  # search noise seeds start here; env noise seeds lie in [0, 2**31)
HAND_SCHEDULES = ("time_uniform", "time_quadratic", "logsnr_uniform", "edm")
LOGIT_BOUND = 10.0  # centred gap logits are clipped to ±this: gaps stay within a factor e^20 of each other
RK4_NFE = 4
GITS_COEFFS = (0.8, 0.85, 0.9, 0.95, 1.0, 1.05, 1.1, 1.15, 1.2)  # GITS's multiple_coeff sweep; 1.15 its default


@dataclass(frozen=True)
class SearchResult:
    """A searched schedule: ``times`` (nfe + 1, decreasing, t_max … t_min) and per-step ``orders``; ``objective``
    its mean endpoint RMSE on the search batches; ``evaluations`` candidate schedules scored; ``search_nfe`` the
    denoiser calls spent, counted per search batch (references, teacher trajectories and candidates included);
    ``seconds`` the wall time."""

    method: str
    solver: str
    times: tuple[float, ...]
    orders: tuple[int, ...]
    objective: float
    evaluations: int
    search_nfe: int
    seconds: float


def step_orders(solver: str, nfe: int, orders: Sequence[int] | None = None) -> tuple[int, ...]:
    """The per-step orders: ``multistep_orders`` of the solver's order unless ``orders`` (length nfe, order i at
    most i + 1 as the multistep history allows) is given."""
    if solver not in MULTISTEP_SOLVERS:
        raise ValueError(f"solver must be one of {sorted(MULTISTEP_SOLVERS)}, got {solver!r}")
    nfe = require_int("nfe", nfe)
    if orders is None:
        return tuple(multistep_orders(MULTISTEP_SOLVERS[solver], nfe))
    orders = tuple(orders)
    if len(orders) != nfe or any(order not in (1, 2, 3) or order > i + 1 for i, order in enumerate(orders)):
        raise ValueError(f"orders must hold nfe = {nfe} orders in (1, 2, 3), order i at most i + 1, got {orders}")
    return orders


class _SearchBatches:
    """The search noise batches of a model, pooled into one batch (samples are independent), with references."""

    def __init__(self, model: str, batch_size: int, batches: int, reference_steps: int, third_order: str) -> None:
        if third_order not in ("exact", "dpmsolver"):
            raise ValueError(f"third_order must be 'exact' or 'dpmsolver', got {third_order!r}")
        self.denoiser, self.schedule = load_sampler_model(model)
        self.batch_size, self.batches, self.third_order = batch_size, batches, third_order
        seeds = [SEARCH_SEED_OFFSET + k for k in range(batches)]
        pairs = [noise_and_reference(model, batch_size, seed, reference_steps) for seed in seeds]
        self.x = torch.cat([x for x, _ in pairs])
        self.reference = torch.cat([reference for _, reference in pairs])
        self.reference_nfe = RK4_NFE * reference_steps
        t_range = torch.tensor([self.schedule.t_max, self.schedule.t_min], dtype=torch.float64)
        self.lambda_start, self.lambda_end = self.schedule.lambda_(t_range).tolist()

    def objective(self, times: Sequence[float], orders: Sequence[int]) -> float:
        """Mean over the search batches of the endpoint RMSE of DPM-Solver++ on ``times`` with ``orders``."""
        return _mean_error(self.denoiser, self.schedule, self.x, self.reference, self.batch_size, times, orders,
                           self.third_order)

    def times(self, logits: np.ndarray) -> list[float]:
        """Gap logits → nfe + 1 times: λ interior points at the cumulative softmax gaps, endpoints pinned."""
        gaps = np.exp(logits - logits.max())
        interior = self.lambda_start + (self.lambda_end - self.lambda_start) * np.cumsum(gaps / gaps.sum())[:-1]
        inner = self.schedule.inverse_lambda(torch.as_tensor(interior, dtype=torch.float64)).tolist()
        return [self.schedule.t_max, *inner, self.schedule.t_min]

    def logits(self, times: Sequence[float]) -> np.ndarray:
        """The centred gap logits of a schedule (the inverse of ``times``)."""
        lambdas = self.schedule.lambda_(torch.as_tensor(list(times), dtype=torch.float64)).numpy()
        return _centre(np.log(np.diff(lambdas)))


def _mean_error(denoiser, schedule, x: torch.Tensor, reference: torch.Tensor, batch_size: int,
                times: Sequence[float], orders: Sequence[int], third_order: str) -> float:
    solver = DPMSolverPlusPlus(denoiser, schedule, third_order=third_order)
    with torch.no_grad():
        for t, t_next, order in zip(times, times[1:], orders):
            x = solver.step(x, t, t_next, order)
    errors = [endpoint_rmse(part, target) for part, target in zip(x.split(batch_size), reference.split(batch_size))]
    value = float(np.mean(errors))
    return value if math.isfinite(value) else math.inf


def schedule_error(model: str, times: Sequence[float], orders: Sequence[int], noise_seeds: Sequence[int],
                   batch_size: int = 128, reference_steps: int = 128, third_order: str = "exact") -> float:
    """Mean endpoint RMSE of DPM-Solver++ on ``times`` with ``orders`` over the noise batches of ``noise_seeds``
    (e.g. held-out seeds 0…7, which the env can draw and the search never uses)."""
    denoiser, schedule = load_sampler_model(model)
    pairs = [noise_and_reference(model, batch_size, int(seed), reference_steps) for seed in noise_seeds]
    if not pairs:
        raise ValueError("noise_seeds must name at least one seed")
    x, reference = torch.cat([x for x, _ in pairs]), torch.cat([ref for _, ref in pairs])
    return _mean_error(denoiser, schedule, x, reference, batch_size, list(times), list(orders), third_order)


def _centre(logits: np.ndarray) -> np.ndarray:
    return np.clip(logits - logits.mean(), -LOGIT_BOUND, LOGIT_BOUND)


def _single_step(method: str, solver: str, batches: _SearchBatches, orders: tuple[int, ...],
                 started: float) -> SearchResult:
    """nfe = 1: the only schedule is (t_max, t_min)."""
    times = (batches.schedule.t_max, batches.schedule.t_min)
    objective = batches.objective(times, orders)
    return SearchResult(method, solver, times, orders, objective, 1, batches.batches * (batches.reference_nfe + 1),
                        time.perf_counter() - started)


def _child(rng: np.random.Generator, genomes: list[np.ndarray], scores: list[float], crossover_rate: float,
           mutation_scale: float) -> np.ndarray:
    """Binary-tournament parents, uniform crossover with probability ``crossover_rate``, Gaussian mutation."""

    def tournament() -> np.ndarray:
        first, second = rng.integers(len(genomes), size=2)
        return genomes[first if scores[first] <= scores[second] else second]

    child = tournament()
    if rng.random() < crossover_rate:
        child = np.where(rng.random(len(child)) < 0.5, child, tournament())
    return _centre(child + mutation_scale * rng.standard_normal(len(child)))


def evolutionary_search(model: str, nfe: int, solver: str = "dpmpp2m", orders: Sequence[int] | None = None,
                        batch_size: int = 128, batches: int = 16, reference_steps: int = 128,
                        third_order: str = "exact", seed: int = 0, population: int = 16, generations: int = 40,
                        offspring: int | None = None, mutation_scale: float = 0.3,
                        crossover_rate: float = 0.5) -> SearchResult:
    """AutoDiffusion-style (μ + λ) evolution of the gap logits (Li et al., ICCV 2023), endpoint RMSE as fitness.

    The population (``population``) starts with the hand schedules (``HAND_SCHEDULES``) and N(0, 1) logits. Each of
    ``generations`` generations breeds ``offspring`` children (default: ``population``): two parents by binary
    tournament, a uniform crossover (each gene from either parent) with probability ``crossover_rate`` (else a copy
    of the first), then N(0, ``mutation_scale``²) on every logit; the best ``population`` of parents and children
    survive (elitism: the best never gets worse). All randomness comes from ``numpy.random.default_rng(seed)``.
    """
    started = time.perf_counter()
    orders = step_orders(solver, nfe, orders)
    population = require_int("population", population)
    offspring = require_int("offspring", population if offspring is None else offspring)
    if population < len(HAND_SCHEDULES):
        raise ValueError(f"population must be >= {len(HAND_SCHEDULES)} (the hand schedules seed it), got {population}")
    if isinstance(generations, bool) or not (isinstance(generations, (int, np.integer)) and generations >= 0):
        raise ValueError(f"generations must be an int >= 0, got {generations!r}")
    if not (math.isfinite(mutation_scale) and mutation_scale > 0):
        raise ValueError(f"mutation_scale must be finite and > 0, got {mutation_scale!r}")
    if not 0 <= crossover_rate <= 1:
        raise ValueError(f"crossover_rate must lie in [0, 1], got {crossover_rate!r}")
    data = _SearchBatches(model, require_int("batch_size", batch_size), require_int("batches", batches),
                          require_int("reference_steps", reference_steps), third_order)
    if len(orders) == 1:
        return _single_step("evolution", solver, data, orders, started)
    rng = np.random.default_rng(seed)
    hand = [data.logits(make_timesteps(name, data.schedule, len(orders)).tolist()) for name in HAND_SCHEDULES]
    genomes = hand + [_centre(rng.standard_normal(len(orders))) for _ in range(population - len(hand))]
    scores = [data.objective(data.times(genome), orders) for genome in genomes]
    for _ in range(generations):
        children = [_child(rng, genomes, scores, crossover_rate, mutation_scale) for _ in range(offspring)]
        genomes += children
        scores += [data.objective(data.times(child), orders) for child in children]
        keep = np.argsort(scores, kind="stable")[:population]
        genomes, scores = [genomes[i] for i in keep], [scores[i] for i in keep]
    evaluations = population + generations * offspring
    best = int(np.argmin(scores))
    return SearchResult("evolution", solver, tuple(data.times(genomes[best])), orders, scores[best], evaluations,
                        data.batches * (data.reference_nfe + evaluations * len(orders)), time.perf_counter() - started)


def dp_path(cost: np.ndarray, steps: int, coeff: float = 1.15) -> list[int]:
    """GITS's dynamic programme (Chen et al., ICML 2024): the path 0 = p_0 < p_1 < … < p_steps = G through a grid of
    G + 1 points minimising Σ_m coeff^m·C[p_m][p_{m+1}], via V[j][k] = min_{i>j} C[j][i] + coeff·V[i][k − 1],
    V[G][0] = 0. ``cost`` is (G + 1) × (G + 1); only its strict upper triangle is read. Ties go to the smaller i."""
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2 or cost.shape[0] != cost.shape[1] or len(cost) < 2:
        raise ValueError(f"cost must be a square matrix of at least 2 × 2, got shape {cost.shape}")
    size = len(cost)
    steps = require_int("steps", steps)
    if steps > size - 1:
        raise ValueError(f"steps must be <= {size - 1} (the grid's intervals), got {steps}")
    if not (math.isfinite(coeff) and coeff > 0):
        raise ValueError(f"coeff must be finite and > 0, got {coeff!r}")
    upper = np.triu(np.ones((size, size), dtype=bool), 1)
    if not np.all(np.isfinite(cost[upper])):
        raise ValueError("cost must be finite above the diagonal")
    edges = np.where(upper, cost, np.inf)
    value = np.full(size, np.inf)
    value[-1] = 0.0
    choices = []
    for _ in range(steps):
        total = edges + coeff * value[None, :]
        choice = np.argmin(total, axis=1)
        value = total[np.arange(size), choice]
        choices.append(choice)
    path = [0]
    for choice in reversed(choices):
        path.append(int(choice[path[-1]]))
    return path


def _teacher_states(data: _SearchBatches, grid: list[float], teacher_steps: int) -> tuple[list[torch.Tensor], int]:
    """RK4-in-λ states at every grid time from the pooled search noise, each interval with
    max(1, ⌈teacher_steps·Δλ/Λ⌉) steps (about ``teacher_steps`` λ-uniform RK4 steps overall); also the NFE."""
    lambdas = data.schedule.lambda_(torch.tensor(grid, dtype=torch.float64)).tolist()
    span = data.lambda_end - data.lambda_start
    states, steps_total = [data.x], 0
    with torch.no_grad():
        for t, t_next, lam, lam_next in zip(grid, grid[1:], lambdas, lambdas[1:]):
            steps = max(1, math.ceil(teacher_steps * (lam_next - lam) / span - 1e-9))
            states.append(reference_solution(data.denoiser, data.schedule, states[-1], t, t_next, steps))
            steps_total += steps
    return states, RK4_NFE * steps_total


def _ddim_costs(data: _SearchBatches, grid: list[float], states: list[torch.Tensor]) -> np.ndarray:
    """C[i][j] = RMSE(one DDIM step from the teacher state at grid i to grid j, teacher state at j), j > i:
    x_j ≈ (σ_j/σ_i)·x_i − α_j·expm1(−(λ_j − λ_i))·x̂0(x_i, t_i); one denoiser call per i."""
    schedule, size = data.schedule, len(grid)
    times = torch.tensor(grid, dtype=torch.float64)
    log_sigma, lambdas, alpha = schedule.log_sigma(times), schedule.lambda_(times), schedule.alpha(times)
    cost = np.full((size, size), np.inf)
    targets = torch.stack(states)  # (G + 1, N, d)
    with torch.no_grad():
        for i in range(size - 1):
            x0 = data.denoiser.predict_x0(states[i], times[i].to(states[i].device))
            ratio = torch.exp(log_sigma[i + 1:] - log_sigma[i]).to(targets)[:, None, None]
            weight = (alpha[i + 1:] * torch.expm1(-(lambdas[i + 1:] - lambdas[i]))).to(targets)[:, None, None]
            jumps = ratio * states[i] - weight * x0
            cost[i, i + 1:] = (jumps - targets[i + 1:]).pow(2).mean(dim=(1, 2)).sqrt().cpu().numpy()
    return cost


def dp_search(model: str, nfe: int, solver: str = "dpmpp2m", orders: Sequence[int] | None = None,
              batch_size: int = 128, batches: int = 16, reference_steps: int = 128, third_order: str = "exact",
              grid: str = "edm", grid_points: int = 61, coeff: float | Sequence[float] = GITS_COEFFS,
              teacher_steps: int | None = None) -> SearchResult:
    """GITS-style search (Chen et al., ICML 2024) on the search noise.

    Teacher trajectories on a fine grid of ``grid_points`` times (default, as GITS: 61 points of the EDM ρ = 7
    schedule; any ``TIMESTEPS`` name) by RK4 in λ, about ``teacher_steps`` (default ``reference_steps``) steps in
    all; their endpoint RMSE against a 1024-step RK4 solution is 1e-6 on gmm-64d at 128 steps (the 128-step
    reference's own: 3e-6). The cost of a jump i → j is the RMSE of one DDIM (DPM-Solver-1) step from the teacher
    state at i against the teacher state at j, in x (the solver's variable); ``dp_path`` picks exactly nfe steps.
    With one ``coeff`` (GITS: 1.15) that path is the schedule; with several (default: GITS's sweep 0.8, 0.85, …,
    1.2) each path is scored with ``solver`` on the search batches and the best is kept. The DDIM cost does not
    see multistep stability: its paths mix very unequal steps, which 2M/3M extrapolation can amplify.
    """
    started = time.perf_counter()
    orders = step_orders(solver, nfe, orders)
    if grid not in TIMESTEPS:
        raise ValueError(f"grid must be one of {sorted(TIMESTEPS)}, got {grid!r}")
    grid_points = require_int("grid_points", grid_points)
    if grid_points < len(orders) + 1:
        raise ValueError(f"grid_points must be >= nfe + 1 = {len(orders) + 1}, got {grid_points}")
    reference_steps = require_int("reference_steps", reference_steps)
    teacher_steps = require_int("teacher_steps", reference_steps if teacher_steps is None else teacher_steps)
    coeffs = (coeff,) if isinstance(coeff, (int, float)) else tuple(coeff)
    if not coeffs or not all(isinstance(value, (int, float)) and math.isfinite(value) and value > 0
                             for value in coeffs):
        raise ValueError(f"coeff must be a number > 0 or a non-empty sequence of them, got {coeff!r}")
    data = _SearchBatches(model, require_int("batch_size", batch_size), require_int("batches", batches),
                          reference_steps, third_order)
    if len(orders) == 1:
        return _single_step("dp", solver, data, orders, started)
    fine = make_timesteps(grid, data.schedule, grid_points - 1).tolist()
    states, teacher_nfe = _teacher_states(data, fine, teacher_steps)
    cost = _ddim_costs(data, fine, states)
    candidates = {tuple(fine[i] for i in dp_path(cost, len(orders), value)) for value in coeffs}
    scored = sorted((data.objective(times, orders), times) for times in candidates)
    search_nfe = data.batches * (data.reference_nfe + teacher_nfe + grid_points - 1 + len(candidates) * len(orders))
    return SearchResult("dp", solver, scored[0][1], orders, scored[0][0], len(candidates), search_nfe,
                        time.perf_counter() - started)


SEARCHES = {"evolution": evolutionary_search, "dp": dp_search}


def check_search(method: str, solver: str, options: Mapping[str, Any]) -> None:
    """Raise ValueError for an unknown method, solver or option name (the keyword arguments of
    ``SEARCHES[method]`` other than model, nfe and solver)."""
    if method not in SEARCHES:
        raise ValueError(f"method must be one of {sorted(SEARCHES)}, got {method!r}")
    if solver not in MULTISTEP_SOLVERS:
        raise ValueError(f"solver must be one of {sorted(MULTISTEP_SOLVERS)}, got {solver!r}")
    parameters = inspect.signature(SEARCHES[method]).parameters
    allowed = sorted(set(parameters) - {"model", "nfe", "solver"})
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"options of search {method!r} must be among {allowed}, got {unknown}")
    for key, value in options.items():  # numbers where the search's default holds numbers (`coeff=abc` does not)
        default = parameters[key].default
        if _numbers(default) and not _numbers(value):
            raise ValueError(f"option {key} of search {method!r} must be a number (or numbers) like its default "
                             f"{default!r}, got {value!r}")


def _numbers(value: Any) -> bool:
    """Whether ``value`` is a number or a non-empty sequence of numbers (bools are not)."""
    items = list(value) if isinstance(value, (list, tuple)) and value else [value]
    return all(isinstance(item, (int, float)) and not isinstance(item, bool) for item in items)


def searched_schedule(method: str, model: str, nfe: int, solver: str = "dpmpp2m", batch_size: int = 128,
                      batches: int = 16, reference_steps: int = 128, third_order: str = "exact", stored: bool = True,
                      **options) -> SearchResult:
    """``SEARCHES[method]`` (``"evolution"`` or ``"dp"``) with ``options`` (e.g. ``generations=20``, ``seed=1``,
    ``coeff=1.0``), cached per process: a controller evaluated over many seeds searches once.

    With ``stored`` the zoo's result of exactly this search is returned when it ships one
    (``stored_search``); False searches afresh.
    """
    check_search(method, solver, options)
    frozen = tuple(sorted((key, tuple(value) if isinstance(value, list) else value) for key, value in options.items()))
    return _searched(method, model, nfe, solver, batch_size, batches, reference_steps, third_order, frozen, stored)


@functools.lru_cache(maxsize=64)
def _searched(method: str, model: str, nfe: int, solver: str, batch_size: int, batches: int, reference_steps: int,
              third_order: str, options: tuple, stored: bool) -> SearchResult:
    if stored:
        from adaptstep.diffusion.stored_search import search_key, stored_search  # here: it imports this module

        found = stored_search(search_key(method, model, nfe, solver, batch_size, batches, reference_steps,
                                         third_order, **dict(options)))
        if found is not None:
            return found
    return SEARCHES[method](model, nfe, solver, batch_size=batch_size, batches=batches,
                            reference_steps=reference_steps, third_order=third_order, **dict(options))
