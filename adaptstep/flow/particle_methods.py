"""Budgeted particle baselines of Kim et al. 2025 (RBF, App. D): best-of-N, Search over Paths and SMC.

Each method runs one generation per seed, all generations batched into one ``sampler.evaluate`` call per
grid state. 1 NFE is one row passed to ``sampler.evaluate`` (the velocity at one state, which also gives its
Tweedie x̂0); ``SearchResult.nfe`` counts them exactly per generation and never exceeds ``budget``.
``verifier_calls`` counts the rows scored by the verifier. Transitions use the sampler's own proposals
(``FlowSampler.propose``), so its mode (ode / linear-sde / vp-sde) decides between ODE and SDE.

Randomness: generation g draws from ``generators(seed_g, method, count)``, numpy generators seeded by
``SeedSequence([seed_g, crc32(method), k])``, so a generation's result depends only on its seed and the
method's arguments, never on the other seeds of the batch.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

import numpy as np
import torch

from adaptstep.core.settings import require_int
from adaptstep.flow.result import SearchResult
from adaptstep.flow.sampler import FlowSampler
from adaptstep.flow.verifiers import Verifier

METHODS = ("best_of_n", "search_over_paths", "smc")
POTENTIALS = ("diff", "max", "rt")


def generators(seed: int, method: str, count: int = 1) -> list[np.random.Generator]:
    """The ``count`` independent streams of one generation of ``method`` seeded by ``seed``."""
    if method not in METHODS:
        raise ValueError(f"method must be one of {list(METHODS)}, got {method!r}")
    tag = zlib.crc32(method.encode())
    return [np.random.default_rng(np.random.SeedSequence([int(seed), tag, k])) for k in range(count)]


def _check(sampler: FlowSampler, budget: int, seeds: Sequence[int]) -> list[int]:
    if not (isinstance(budget, (int, np.integer)) and budget >= sampler.steps + 1):
        raise ValueError(f"budget must be an int >= steps + 1 = {sampler.steps + 1} (one full generation), "
                         f"got {budget!r}")
    if len(seeds) == 0:
        raise ValueError("seeds must hold at least one seed")
    return [int(seed) for seed in seeds]


def _particles(particles: int | None, budget: int, steps: int) -> int:
    """N = ``budget // (steps + 1)`` full chains unless ``particles`` is given (and affordable)."""
    if particles is None:
        return budget // (steps + 1)
    if not (isinstance(particles, (int, np.integer)) and 1 <= particles <= budget // (steps + 1)):
        raise ValueError(f"particles must be an int in [1, budget // (steps + 1) = {budget // (steps + 1)}], "
                         f"got {particles!r}")
    return int(particles)


def _normal(rngs: Sequence[np.random.Generator], rows: int, dim: int) -> torch.Tensor:
    """(len(rngs)·rows, dim) standard normals, ``rows`` from each generation's stream in turn."""
    return torch.from_numpy(np.concatenate([rng.standard_normal((rows, dim)) for rng in rngs]))


def _run(sampler: FlowSampler, x: torch.Tensor, start: int, stop: int, rngs: Sequence[np.random.Generator]):
    """Evaluate states ``x`` at grid index ``start`` and propagate them to ``stop`` with the sampler's
    proposals: (stop − start + 1) NFE per row. Returns the final states, their velocity and x̂0."""
    rows = len(x) // len(rngs)
    velocity, x0 = sampler.evaluate(x, start)
    for step in range(start, stop):
        x = sampler.propose(x, velocity, step, _normal(rngs, rows, sampler.dim))
        velocity, x0 = sampler.evaluate(x, step + 1)
    return x, velocity, x0


def _scores(verifier: Verifier, x0: torch.Tensor, generations: int) -> torch.Tensor:
    return verifier(x0).cpu().reshape(generations, -1)


def _best(x0: torch.Tensor, reward: torch.Tensor) -> tuple[torch.Tensor, np.ndarray]:
    """Per generation, the x̂0 of highest reward among its rows of ``x0`` (G·n, d) and ``reward`` (G, n)."""
    generations, n = reward.shape
    index = torch.arange(generations) * n + reward.argmax(dim=1)
    return x0[index.to(x0.device)], reward.max(dim=1).values.numpy()


def _top(reward: torch.Tensor, k: int) -> torch.Tensor:
    """Flat row indices of the ``k`` highest rewards of each generation (rows of ``reward`` (G, n))."""
    generations, n = reward.shape
    return (reward.topk(k, dim=1).indices + n * torch.arange(generations).reshape(-1, 1)).reshape(-1)


def _counts(generations: int, value: int) -> np.ndarray:
    return np.full(generations, value, dtype=np.int64)


def best_of_n(sampler: FlowSampler, verifier: Verifier, budget: int, seeds: Sequence[int], *,
              particles: int | None = None) -> SearchResult:
    """Best-of-N (random search over initial noise, Ma et al. 2025; BoN of Kim et al. 2025 with N = 50).

    N plain generations, each ``steps + 1`` NFE; the output is the final x̂0 of highest reward. Only the N final
    x̂0 are scored (N verifier calls, Kim et al. Table 6). Each generation uses one stream: N initial noises, then
    N proposal noises per transition, so its candidates equal ``sampler.generate(noise, rng)`` with that stream.

    Args:
        sampler: The flow sampler.
        verifier: The reward of the final x̂0.
        budget: The NFE of each generation, an int >= ``steps + 1``.
        seeds: One generation per seed.
        particles: N; None for ``budget // (steps + 1)``.

    Returns:
        The result; trace: ``particles``.

    Raises:
        ValueError: If ``budget`` or ``particles`` is out of range or ``seeds`` is empty.
    """
    seeds = _check(sampler, budget, seeds)
    n, count = _particles(particles, budget, sampler.steps), len(seeds)
    rngs = [generators(seed, "best_of_n")[0] for seed in seeds]
    x = sampler.initial(_normal(rngs, n, sampler.dim))
    _, _, x0 = _run(sampler, x, 0, sampler.steps, rngs)
    best, reward = _best(x0, _scores(verifier, x0, count))
    return SearchResult("best_of_n", best, reward, _counts(count, n * (sampler.steps + 1)), _counts(count, n),
                        {"particles": _counts(count, n)})


def paths_plan(steps: int, budget: int, beam: int, width: int, forward: int,
               backward: int) -> tuple[int, int, list[tuple[int, int]]]:
    """The plan of Search over Paths within ``budget`` NFE: (start index, initial chains, loops).

    Chains run from noise to ``start``; loop (a, b) noises the beam from grid index a + ``forward`` back to a
    and integrates it to b = min(a + ``backward``, steps), costing beam·width·(b − a + 1) NFE. ``start`` is
    the smallest index ≥ ``forward`` whose plan fits with ``beam`` chains (the most loops); the leftover
    budget buys extra initial chains. With no such index: ``budget // (steps + 1)`` chains and no loops.
    Arguments as ``search_over_paths``, ``steps`` the sampler's.
    """
    for start in range(forward, steps):
        loops, index = [], start
        while index < steps:
            loops.append((index - forward, min(index - forward + backward, steps)))
            index = loops[-1][1]
        cost = beam * (start + 1) + beam * width * sum(b - a + 1 for a, b in loops)
        if cost <= budget:
            return start, beam + (budget - cost) // (start + 1), loops
    return steps, budget // (steps + 1), []


def _noise_forward(sampler: FlowSampler, x: torch.Tensor, start: int, stop: int, noise: torch.Tensor) -> torch.Tensor:
    """The path's forward kernel from grid index ``start`` back to the noisier ``stop`` < ``start``:
    x' = (α'/α)·x + √(σ'² − (α'/α)²σ²)·z (linear: α = 1 − t, σ = t; VP: √(1 − (ᾱ'/ᾱ)²))."""
    path, t, t_noisy = sampler.path, sampler.times[start], sampler.times[stop]
    ratio = float(path.alpha(t_noisy) / path.alpha(t))
    scale = math.sqrt(max(float(path.sigma(t_noisy)) ** 2 - ratio**2 * float(path.sigma(t)) ** 2, 0.0))
    return ratio * x + scale * noise.to(x.device, x.dtype)


def search_over_paths(sampler: FlowSampler, verifier: Verifier, budget: int, seeds: Sequence[int], *,
                      beam: int = 2, width: int = 5, forward: int = 2, backward: int = 3) -> SearchResult:
    """Search over Paths (Ma et al. 2025, arXiv 2501.09732, Sec. 3.2), on the sampler's grid.

    ``beam`` (N) chains run from noise to grid index ``start``; then, until the last grid index: each beam
    member spawns ``width`` (K) copies noised ``forward`` grid steps back with the path's forward kernel,
    each integrated ``backward`` steps on (clipped at the last index), scored on its x̂0, and the top
    ``beam`` of the N·K copies are kept. The output is the best x̂0 at the last grid index. See
    ``paths_plan`` for ``start`` and the NFE count. Defaults: Kim et al.'s N = 2, K = 5 with Δf = 2, Δb = 3
    grid steps (one step of progress per loop, 40 NFE per loop).

    Departures: Ma et al. integrate back with the ODE; here the sampler's proposals are used (the ODE in
    ``ode`` mode, its SDE otherwise). Kim et al.'s code noises forward by 780 and integrates back by 810 of
    1000 timesteps with its own 4-step ODE; on a 10-step grid such loops would cost ≥ 100 NFE and none would
    fit 50..100 NFE. Leftover budget starts extra chains, of which the ``beam`` of highest x̂0 reward at
    ``start`` are kept (random search before the path search).

    Args:
        sampler: The flow sampler.
        verifier: The reward of x̂0.
        budget: The NFE of each generation, an int >= ``steps + 1``.
        seeds: One generation per seed.
        beam: N, the chains kept (>= 1).
        width: K, the copies of each beam member per loop (>= 1).
        forward: Δf, the grid steps each loop noises back (< steps).
        backward: Δb, the grid steps each loop integrates on (> ``forward``).

    Returns:
        The result; trace: ``particles`` (initial chains), ``start`` and ``loops``.

    Raises:
        ValueError: If an argument is out of range or ``seeds`` is empty.
    """
    seeds = _check(sampler, budget, seeds)
    beam, width = require_int("beam", beam), require_int("width", width)
    forward, backward = require_int("forward", forward), require_int("backward", backward)
    if forward >= sampler.steps:
        raise ValueError(f"forward must be < steps = {sampler.steps}, got {forward}")
    if backward <= forward:
        raise ValueError(f"backward must be > forward = {forward} (progress each loop), got {backward}")
    start, chains, loops = paths_plan(sampler.steps, budget, beam, width, forward, backward)
    count, dim, copies = len(seeds), sampler.dim, beam * width
    rngs = [generators(seed, "search_over_paths")[0] for seed in seeds]
    x, _, x0 = _run(sampler, sampler.initial(_normal(rngs, chains, dim)), 0, start, rngs)
    nfe, calls = chains * (start + 1), 0
    if chains > beam or not loops:
        reward, calls = _scores(verifier, x0, count), chains
        if loops:
            x = x[_top(reward, beam).to(x.device)]
    for noisy, stop in loops:
        x = _noise_forward(sampler, x.repeat_interleave(width, dim=0), noisy + forward, noisy,
                           _normal(rngs, copies, dim))
        x, _, x0 = _run(sampler, x, noisy, stop, rngs)
        reward = _scores(verifier, x0, count)
        nfe, calls = nfe + copies * (stop - noisy + 1), calls + copies
        x = x[_top(reward, beam).to(x.device)]
    best, best_reward = _best(x0, reward)
    return SearchResult("search_over_paths", best, best_reward, _counts(count, nfe), _counts(count, calls),
                        {"particles": _counts(count, chains), "start": _counts(count, start),
                         "loops": _counts(count, len(loops))})


def _log_potential(potential: str, lam: float, reward: torch.Tensor,
                   state: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """log G_t and the new per-particle state (previous reward for ``diff``, running max for ``max``)."""
    if potential == "diff":
        value, state = reward - state, reward
    elif potential == "max":
        value = state = torch.maximum(reward, state)
    else:
        value = reward
    log_g = lam * value if lam > 0 else torch.zeros_like(value)
    return torch.where(torch.isnan(log_g), -torch.inf, log_g), state


def _normalized(log_w: torch.Tensor) -> torch.Tensor:
    """Normalized weights per generation; a generation whose weights are all zero gets uniform weights."""
    log_w = torch.where(torch.isnan(log_w), -torch.inf, log_w)
    dead = torch.isinf(log_w.max(dim=1, keepdim=True).values)
    return torch.softmax(torch.where(dead, torch.zeros_like(log_w), log_w), dim=1)


def smc(sampler: FlowSampler, verifier: Verifier, budget: int, seeds: Sequence[int], *,
        particles: int | None = None, potential: str = "diff", lam: float = 10.0,
        ess_threshold: float = 0.5) -> SearchResult:
    """Sequential Monte Carlo / FK steering (Singhal et al. 2025, arXiv 2501.06848; SMC of Kim et al. 2025).

    N = ``budget // (steps + 1)`` (or ``particles``) particles are propagated by the pretrained kernel
    (``sampler.propose``). At each grid state before the last, every particle's x̂0 is scored, its log
    weight grows by log G_t, and the generation is resampled (multinomial, from its own stream) when
    ESS = 1/Σw̄² < ``ess_threshold``·N, which resets the weights. Potentials: ``diff`` G_t = exp(λ(r_t − r_{t−1}))
    with r_{−1} = 0 (weights ∝ exp(λ r_t), the tilted target), ``max`` G_t = exp(λ max_{s≤t} r_s) and ``rt``
    G_t = exp(λ r_t). The last grid state is scored too and the particle of highest reward is returned.
    NFE and verifier calls: N·(steps + 1) each. With λ = 0 it never resamples: plain generations.

    Departures from FK steering's code: weights accumulate between resamplings (their code recomputes them
    from the current potential alone); the running max starts at −∞ (not 0); there is no resampling and no
    final potential correction at the last state, since the output is the argmax of reward, not a draw.

    Args:
        sampler: The flow sampler.
        verifier: The reward of x̂0.
        budget: The NFE of each generation, an int >= ``steps + 1``.
        seeds: One generation per seed.
        particles: N; None for ``budget // (steps + 1)``.
        potential: ``"diff"``, ``"max"`` or ``"rt"`` (see above).
        lam: λ of the potentials (>= 0).
        ess_threshold: The share of N below which the ESS triggers resampling.

    Returns:
        The result; trace: ``particles``, ``resampled`` (resampling events) and ``ess`` (generations, steps), the
        ESS after weighting at each grid state before the last.

    Raises:
        ValueError: If an argument is out of range or ``seeds`` is empty.
    """
    seeds = _check(sampler, budget, seeds)
    n, count, steps = _particles(particles, budget, sampler.steps), len(seeds), sampler.steps
    if potential not in POTENTIALS:
        raise ValueError(f"potential must be one of {list(POTENTIALS)}, got {potential!r}")
    if not (math.isfinite(lam) and lam >= 0):
        raise ValueError(f"lam must be finite and >= 0, got {lam!r}")
    if not 0 <= ess_threshold <= 1:
        raise ValueError(f"ess_threshold must be in [0, 1], got {ess_threshold!r}")
    moves, resamplers = zip(*(generators(seed, "smc", 2) for seed in seeds))
    x = sampler.initial(_normal(moves, n, sampler.dim))
    log_w = torch.zeros(count, n, dtype=torch.float64)
    state = torch.full((count, n), 0.0 if potential == "diff" else -torch.inf, dtype=torch.float64)
    resampled, ess = np.zeros(count, dtype=np.int64), np.zeros((count, steps))
    for step in range(steps + 1):
        velocity, x0 = sampler.evaluate(x, step)
        reward = _scores(verifier, x0, count)
        if step == steps:
            break
        log_g, state = _log_potential(potential, lam, reward, state)
        weights = _normalized(log_w + log_g)
        log_w = torch.log(weights)
        ess[:, step] = (1.0 / weights.pow(2).sum(dim=1)).numpy()
        index = torch.arange(count * n)
        for g in np.flatnonzero(ess[:, step] < ess_threshold * n):
            ancestors = torch.from_numpy(resamplers[g].choice(n, size=n, p=weights[g].numpy()))
            index[g * n:(g + 1) * n] = g * n + ancestors
            state[g], log_w[g] = state[g, ancestors], 0.0
            resampled[g] += 1
        x, velocity = x[index.to(x.device)], velocity[index.to(x.device)]
        x = sampler.propose(x, velocity, step, _normal(moves, n, sampler.dim))
    best, reward = _best(x0, reward)
    return SearchResult("smc", best, reward, _counts(count, n * (steps + 1)), _counts(count, n * (steps + 1)),
                        {"particles": _counts(count, n), "resampled": resampled, "ess": ess})
