"""Per-step quota search on independent chains: SVDD, the linearly decreasing schedule, RBF, and learned quotas.

A chain makes ``steps + 1`` decisions. Decision 0 draws initial noises and keeps the best by verifier
reward of their Tweedie x̂0 (RBF's initial best-of-K; K = 1 for SVDD). Decision i ≥ 1 draws proposals
x(j) ~ N(x_{t_{i−1}} − f·Δt, g²Δt·I) for the transition t_{i−1} → t_i (``FlowSampler.propose``); each costs
1 NFE, the velocity at x(j), which also gives x̂0(j) and the drift of the next transition.

Acceptance (Kim et al. 2025, Alg. 2): with early acceptance the first proposal whose reward beats the best
reward so far r* is taken at once and r* becomes its reward; otherwise, when the quota is spent, the
proposal of highest reward is taken and r* is left unchanged. The final decision never accepts early
(RBF's code spends all remaining NFE on the final transition). The output is x̂0 of the last state.

A chain can be stopped between decisions (``QuotaChains.stop``): it draws nothing more, and the NFE it has not
spent move to the chains still running (split evenly, the remainder to those of highest reward first), so the
total never changes; ``transfers`` records every move. A chain can instead be resampled (``QuotaChains.resample``):
its unspent NFE u buy n = u // (steps + 1) fresh plain trajectories (``FlowSampler.generate``, best-of-N's
draws, steps + 1 NFE each); the chain's output becomes the best of their final x̂0 and only the remainder
u − n·(steps + 1) moves to the running chains. ``resampled`` records the NFE spent that way.

Proposals of one decision come from a generator seeded by (chain key, decision index) and are evaluated
as one block for speed; those after an early-accepted one are discarded unseen and not charged, so the
result and the accounting are exactly those of drawing proposals one at a time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from adaptstep.core.settings import require_bool
from adaptstep.flow.result import SearchResult
from adaptstep.flow.sampler import FlowSampler
from adaptstep.flow.verifiers import Verifier


class QuotaChains:
    """Independent chains, one per key, each with ``budget`` NFE, advanced one decision at a time.

    Args:
        sampler: The flow sampler whose transitions the chains take (``steps + 1`` decisions).
        verifier: The reward of the proposals' x̂0.
        budget: The NFE of each chain, an int >= ``steps + 1`` (one NFE per decision).
        keys: One key (a sequence of ints) per chain; it seeds the chain's proposals.

    Raises:
        ValueError: If ``budget`` is too small or ``keys`` is empty.
    """

    def __init__(self, sampler: FlowSampler, verifier: Verifier, budget: int, keys: Sequence[Sequence[int]]):
        decisions = sampler.steps + 1
        if not (isinstance(budget, (int, np.integer)) and budget >= decisions):
            raise ValueError(f"budget must be an int >= steps + 1 = {decisions} (one NFE per decision), got {budget!r}")
        if len(keys) == 0:
            raise ValueError("keys must name at least one chain")
        self.sampler, self.verifier, self.budget = sampler, verifier, int(budget)
        self.keys = [tuple(int(k) for k in key) for key in keys]
        self.decisions, chains = decisions, len(self.keys)
        self.decision = 0
        self.budgets = np.full(chains, self.budget, dtype=np.int64)  # each chain's NFE after transfers
        self.alive = np.ones(chains, dtype=bool)
        self.finished = np.zeros(chains, dtype=bool)  # resampled: its output is the best fresh trajectory's x̂0
        self.resampled = np.zeros((chains, decisions), dtype=np.int64)  # NFE spent on fresh trajectories
        self.transfers = np.zeros((chains, decisions), dtype=np.int64)  # NFE moved in (+) or out (−) per decision
        self.nfe = np.zeros(chains, dtype=np.int64)
        self.best_reward = np.full(chains, -np.inf)
        self.reward = np.full(chains, -np.inf)  # reward of each chain's current state
        self.quotas = np.zeros((chains, decisions), dtype=np.int64)
        self.used = np.zeros((chains, decisions), dtype=np.int64)
        self.step_best = np.full((chains, decisions), -np.inf)
        self.early = np.zeros((chains, decisions), dtype=bool)
        shape = (chains, sampler.dim)
        self.x = torch.zeros(shape, dtype=sampler.dtype, device=sampler.device)
        self.velocity, self.x0 = torch.zeros_like(self.x), torch.zeros_like(self.x)

    @property
    def done(self) -> bool:
        """Whether every decision has been made."""
        return self.decision >= self.decisions

    @property
    def cost(self) -> int:
        """NFE committed so far over every chain: proposals and fresh trajectories."""
        return int(self.nfe.sum())

    def quality(self) -> dict[str, float]:
        """The verifier reward of the best chain's current state."""
        return {"reward": float(self.reward.max())}

    def summary(self) -> dict[str, Any]:
        """Decisions made, NFE and quota used per chain, and the rewards."""
        return {"decisions": self.decision, "nfe": self.nfe.tolist(), "quotas": self.used.tolist(),
                "reward": self.reward.tolist()}

    @property
    def remaining(self) -> np.ndarray:
        """Each chain's NFE not yet spent (0 for a stopped chain)."""
        return self.budgets - self.nfe

    @property
    def max_quota(self) -> np.ndarray:
        """The most proposals this decision may use, keeping one NFE for each later decision (0 when stopped)."""
        return np.where(self.alive, self.remaining - (self.decisions - self.decision - 1), 0)

    def stop(self, chain: int) -> int:
        """Stop ``chain`` before the current decision and move its unspent NFE to the running chains.

        The u unspent NFE are split as u // k per running chain (k of them), the remainder one each to the
        chains of highest current reward; ``transfers[:, decision]`` records −u for ``chain`` and the shares.

        Returns:
            u, the NFE moved.

        Raises:
            ValueError: If ``chain`` is not a running chain, it is the last running one, or the decision is the
                first (nothing to keep yet) or after the last.
        """
        self._check_stop(chain)
        moved = int(self.remaining[chain])
        self.alive[chain] = False
        self.budgets[chain] -= moved
        self.transfers[chain, self.decision] -= moved
        self._share_out(moved)
        return moved

    def resample(self, chain: int) -> int:
        """Stop ``chain`` and spend its u unspent NFE on n = u // (steps + 1) fresh plain trajectories.

        The trajectories' initial and SDE noises come from a generator seeded by (key, decision, 1), so they are
        independent of every proposal. If n >= 1 the chain's output (``x0``, ``reward``) becomes the best fresh
        final x̂0 (``finished``), even when its current state scores higher, since that one is not a sample yet;
        with n = 0 it is a plain ``stop``. The remainder u − n·(steps + 1) moves to the running chains as in
        ``stop``; ``resampled[chain, decision]`` records n·(steps + 1), and ``transfers`` −u for the chain.

        Returns:
            n, the fresh trajectories drawn.

        Raises:
            ValueError: As ``stop``.
        """
        self._check_stop(chain)
        unspent, cost = int(self.remaining[chain]), self.sampler.steps + 1
        count = unspent // cost
        if count:
            generator = np.random.default_rng(np.random.SeedSequence([*self.keys[chain], self.decision, 1]))
            noise = torch.from_numpy(generator.standard_normal((count, self.sampler.dim)))
            x0 = self.sampler.generate(noise, generator)
            rewards = self.verifier(x0).cpu().numpy()
            best = int(np.argmax(rewards))
            self.x0[chain], self.reward[chain] = x0[best], rewards[best]
            self.finished[chain] = True
            self.nfe[chain] += count * cost
            self.resampled[chain, self.decision] = count * cost
        self.alive[chain] = False
        self.budgets[chain] -= unspent - count * cost
        self.transfers[chain, self.decision] -= unspent
        self._share_out(unspent - count * cost)
        return count

    def _check_stop(self, chain: int) -> None:
        if not 0 < self.decision < self.decisions:
            raise ValueError(f"a chain can be stopped only before decisions 1…{self.decisions - 1}, "
                             f"the current decision is {self.decision}")
        if not (0 <= chain < len(self.keys) and self.alive[chain]):
            running = np.flatnonzero(self.alive).tolist()
            raise ValueError(f"chain must be a running chain among {running}, got {chain!r}")
        if self.alive.sum() < 2:
            raise ValueError("the last running chain cannot be stopped")

    def _share_out(self, moved: int) -> None:
        """Split ``moved`` NFE over the running chains (remainder to the highest rewards first), into transfers."""
        running = np.flatnonzero(self.alive)
        order = running[np.argsort(-self.reward[running], kind="stable")]
        shares = np.full(len(order), moved // len(order), dtype=np.int64)
        shares[: moved % len(order)] += 1
        self.budgets[order] += shares
        self.transfers[order, self.decision] += shares

    def best_chain(self) -> int:
        """The running chain of highest current reward (the first on ties)."""
        return int(np.flatnonzero(self.alive)[np.argmax(self.reward[self.alive])])

    def output_chain(self) -> int:
        """The chain whose x̂0 is the output: highest reward among running and resampled chains (first on ties)."""
        candidates = np.flatnonzero(self.alive | self.finished)
        return int(candidates[np.argmax(self.reward[candidates])])

    def begin(self) -> None:
        """Open the current decision: one proposal generator per chain, seeded by (key, decision), empty pools."""
        if self.done:
            raise RuntimeError("every decision has been made; build a new QuotaChains")
        self._generators = [np.random.default_rng(np.random.SeedSequence([*key, self.decision])) for key in self.keys]
        self._pools: list[list[torch.Tensor]] = [[] for _ in self.keys]  # per chain: states, velocity, x̂0 blocks
        self._rewards: list[np.ndarray] = [np.empty(0) for _ in self.keys]

    def draw(self, counts: Sequence[int]) -> list[np.ndarray]:
        """Evaluate ``counts[c]`` more proposals of each chain c (one batch) and return their rewards."""
        blocks = []
        for chain, count in enumerate(counts):
            if count == 0:
                continue
            noise = torch.from_numpy(self._generators[chain].standard_normal((int(count), self.sampler.dim)))
            if self.decision == 0:
                blocks.append(self.sampler.initial(noise))
            else:
                x, velocity = self.x[chain : chain + 1], self.velocity[chain : chain + 1]
                blocks.append(self.sampler.propose(x, velocity, self.decision - 1, noise))
        states = torch.cat(blocks)
        velocity, x0 = self.sampler.evaluate(states, self.decision)
        rewards = self.verifier(x0).cpu().numpy()
        new, start = [], 0
        for chain, count in enumerate(counts):
            rows = slice(start, start + int(count))
            self._pools[chain].append((states[rows], velocity[rows], x0[rows]))
            self._rewards[chain] = np.concatenate([self._rewards[chain], rewards[rows]])
            new.append(rewards[rows])
            start += int(count)
        return new

    def pool_rewards(self, chain: int) -> np.ndarray:
        """Rewards of the proposals drawn so far for ``chain`` in the current decision."""
        return self._rewards[chain]

    def commit(self, chosen: Sequence[int], used: Sequence[int], quotas: Sequence[int], early: Sequence[bool]) -> None:
        """Close the current decision on every chain.

        Args:
            chosen: Per chain c, the index of the proposal it moves to.
            used: Per chain, the NFE charged (the proposals it looked at).
            quotas: Per chain, the quota it was given, for the trace.
            early: Per chain, whether it accepted early; that sets r* to the chosen reward (decision 0 always
                does).
        """
        for chain, (index, count) in enumerate(zip(chosen, used)):
            if not self.alive[chain]:
                continue
            states, velocity, x0 = (torch.cat(parts) for parts in zip(*self._pools[chain]))
            rewards = self._rewards[chain]
            self.x[chain], self.velocity[chain], self.x0[chain] = states[index], velocity[index], x0[index]
            self.reward[chain] = rewards[index]
            if early[chain] or self.decision == 0:
                self.best_reward[chain] = max(self.best_reward[chain], rewards[index])
            self.nfe[chain] += count
            self.quotas[chain, self.decision], self.used[chain, self.decision] = quotas[chain], count
            self.step_best[chain, self.decision] = rewards[:count].max()
            self.early[chain, self.decision] = early[chain]
        self.decision += 1

    def advance(self, quotas: Sequence[int] | np.ndarray, early_accept: bool) -> None:
        """Make the current decision on every chain.

        Args:
            quotas: Per chain, the proposals allowed, 1 ≤ q ≤ ``max_quota`` (0 for a stopped chain).
            early_accept: Whether RBF's early acceptance applies (never at the first or the last decision).

        Raises:
            ValueError: If ``quotas`` has the wrong length or a value out of range.
            RuntimeError: If every decision has been made.
        """
        if self.done:
            raise RuntimeError("every decision has been made; build a new QuotaChains")
        quotas = np.asarray(quotas, dtype=np.int64).reshape(-1)
        limit = self.max_quota
        if len(quotas) != len(self.keys) or np.any(quotas < self.alive) or np.any(quotas > limit):
            raise ValueError(f"quotas must be {len(self.keys)} ints in [1, max_quota] (0 for a stopped chain), "
                             f"got {quotas.tolist()} with max_quota {limit.tolist()}")
        self.begin()
        rewards = self.draw(quotas)
        early_accept = early_accept and 0 < self.decision < self.decisions - 1
        chosen, used, early = [], [], []
        for chain, chain_rewards in enumerate(rewards):
            better = np.flatnonzero(chain_rewards > self.best_reward[chain]) if early_accept else []
            if not self.alive[chain]:  # stopped: nothing drawn, nothing committed
                chosen.append(-1)
                used.append(0)
                early.append(False)
            elif len(better):
                chosen.append(int(better[0]))
                used.append(int(better[0]) + 1)
                early.append(True)
            else:
                chosen.append(int(np.argmax(chain_rewards)))
                used.append(len(chain_rewards))
                early.append(False)
        self.commit(chosen, used, quotas, early)


class QuotaPolicy:
    """Per-decision quotas for every chain of a ``QuotaChains``; ``early_accept`` turns on RBF's rule."""

    name = "quota"
    early_accept = False

    def quotas(self, chains: QuotaChains) -> np.ndarray:
        """Each chain's quota for the current decision of ``chains``."""
        raise NotImplementedError


class _FixedQuota(QuotaPolicy):
    """One initial noise, ``per_step`` proposals at each middle decision, and all that remains on the last."""

    def per_step(self, chains: QuotaChains) -> int:
        raise NotImplementedError

    def quotas(self, chains: QuotaChains) -> np.ndarray:
        if chains.decision == 0:
            return np.ones(len(chains.keys), dtype=np.int64)
        if chains.decision == chains.decisions - 1:
            return chains.max_quota
        return np.full(len(chains.keys), self.per_step(chains), dtype=np.int64)


class UniformQuota(_FixedQuota):
    """SVDD (Li et al. 2024) with β = 0.

    One initial noise, then K = (B − 1) // steps proposals per step and the argmax; the rounding remainder goes
    to the last step.
    """

    name = "svdd"

    def per_step(self, chains: QuotaChains) -> int:
        """K = (B − 1) // steps."""
        return (chains.budget - 1) // (chains.decisions - 1)


class LinearQuota(_FixedQuota):
    """The fixed, linearly decreasing particle schedule of RBF's code (``AdaptiveSampler``).

    One initial noise, then step i of M gets ⌊(B − 1)·w_i/Σw⌋ proposals with w_i = M − i + 1 (the remainder to the
    last step).
    """

    name = "linear"

    def per_step(self, chains: QuotaChains) -> int:
        """⌊(B − 1)·w_i/Σw⌋ for the current step i, at least 1."""
        steps = chains.decisions - 1
        weight = (steps - chains.decision + 1) / (steps * (steps + 1) / 2)
        return max(1, int((chains.budget - 1) * weight))


class RolloverQuota(QuotaPolicy):
    """Rollover budget forcing (Kim et al. 2025, Alg. 2 and the public code).

    An initial best-of-K0 with K0 = max(1, round(``init_fraction``·B)) (the code's 25 of 250 per chain), a default
    quota d = (B − K0) // steps per step plus the quota the previous step left unused, early acceptance, and all
    remaining NFE on the last step.

    Without early acceptance (``early_accept=False``) no quota is left over, so it is K0 followed by SVDD's
    uniform quotas of d.

    Args:
        init_fraction: The share of the budget B for the initial best-of-K0, in [0, 1).
        early_accept: RBF's early acceptance.

    Raises:
        ValueError: If ``init_fraction`` is outside [0, 1) or ``early_accept`` is not a bool.
    """

    name = "rbf"

    def __init__(self, init_fraction: float = 0.1, early_accept: bool = True) -> None:
        if not 0 <= init_fraction < 1:
            raise ValueError(f"init_fraction must be in [0, 1), got {init_fraction!r}")
        self.init_fraction, self.early_accept = init_fraction, require_bool("early_accept", early_accept)

    def initial(self, budget: int, steps: int) -> int:
        """K0, capped so that each of the ``steps`` later decisions keeps one NFE."""
        return int(min(max(1, round(self.init_fraction * budget)), budget - steps))

    def quotas(self, chains: QuotaChains) -> np.ndarray:
        """K0 first, then the default quota plus the rollover, and all that remains on the last decision."""
        steps, decision = chains.decisions - 1, chains.decision
        initial = self.initial(chains.budget, steps)
        if decision == 0:
            return np.full(len(chains.keys), initial, dtype=np.int64)
        if decision == chains.decisions - 1:
            return chains.max_quota
        default = max(1, (chains.budget - initial) // steps)
        leftover = chains.quotas[:, decision - 1] - chains.used[:, decision - 1] if decision > 1 else 0
        return np.minimum(default + leftover, chains.max_quota)


QUOTA_POLICIES = {"svdd": UniformQuota, "linear": LinearQuota, "rbf": RolloverQuota}
TAG = 7  # the key component that separates quota chains' random streams from other methods'


def run_quota_method(sampler: FlowSampler, verifier: Verifier, budget: int, seeds: Sequence[int],
                     policy: QuotaPolicy, chains: int = 1) -> SearchResult:
    """Run a quota policy on independent chains, ``chains`` per generation (seed).

    Args:
        sampler: The flow sampler.
        verifier: The reward of the proposals' x̂0.
        budget: The NFE of one generation; each chain gets budget // chains.
        seeds: One generation per seed.
        policy: The quota rule.
        chains: The chains per generation (an int >= 1).

    Returns:
        Per generation, its best chain's sample; NFE and verifier calls are summed over its chains.

    Raises:
        ValueError: If ``chains`` is not an int >= 1 or the budget per chain is below ``steps + 1``.
    """
    if not (isinstance(chains, int) and chains >= 1):
        raise ValueError(f"chains must be an int >= 1, got {chains!r}")
    keys = [(int(seed), TAG, chain) for seed in seeds for chain in range(chains)]
    run = QuotaChains(sampler, verifier, budget // chains, keys)
    while not run.done:
        run.advance(policy.quotas(run), policy.early_accept)
    generations = len(seeds)
    reward = run.reward.reshape(generations, chains)
    best = reward.argmax(axis=1)
    rows = np.arange(generations) * chains + best
    nfe = run.nfe.reshape(generations, chains).sum(axis=1)
    return SearchResult(
        method=policy.name, x0=run.x0[rows], reward=reward[np.arange(generations), best], nfe=nfe,
        verifier_calls=nfe.copy(),
        trace={"quotas": run.quotas.reshape(generations, chains, -1), "used": run.used.reshape(generations, chains, -1),
               "early": run.early.reshape(generations, chains, -1)},
    )
