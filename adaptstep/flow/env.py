"""``adaptstep/BudgetForcing-v0``: allocate a flow model's NFE budget across denoising steps (learned RBF)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from adaptstep.core.contract import AdaptiveEnv, Metric, check_parameters
from adaptstep.core.settings import require_bool, require_nonnegative
from adaptstep.flow.chains import TAG, QuotaChains
from adaptstep.flow.sampler import MODES, TIME_GRIDS, FlowSampler
from adaptstep.flow.tasks import FLOW_TASKS, make_task

ENV_MODES = ("quota", "stop")
ACTIONS = ("fraction", "log_share")
SYMLOG_RANGE = 20.0  # observations of rewards are sign(r)·log1p(|r|), clipped to ±this


def symlog(value: float) -> float:
    """sign(r)·log1p(|r|) of ``value``, clipped to ±``SYMLOG_RANGE`` (±inf to the bounds)."""
    if not math.isfinite(value):
        return -SYMLOG_RANGE if value < 0 else SYMLOG_RANGE
    return float(np.clip(math.copysign(math.log1p(abs(value)), value), -SYMLOG_RANGE, SYMLOG_RANGE))


class BudgetForcingEnv(AdaptiveEnv):
    """One generation of a flow model under a total budget of ``budget`` NFE, searched step by step.

    The generation makes ``steps + 1`` decisions (``adaptstep.flow.chains``): decision 0 draws initial noises
    and keeps the best by verifier reward of x̂0; decision i ≥ 1 draws proposals for the i-th transition of the
    ``sde`` sampler (ode / linear-sde / vp-sde) and keeps one. Every proposal costs 1 NFE; each later decision
    keeps at least one NFE in reserve.

    ``mode="quota"`` (one env step per decision): action ``Box([0, 1])``, the decision's quota as a fraction f
    of the remaining budget, q = clip(round(f·remaining), 1, remaining − decisions left after this one); with
    ``action="log_share"`` the quota is q = round(share^{2f}) instead, share = remaining / decisions left (so
    f = 0 is one proposal, f = ½ the uniform share and f = 1 its square: the middle of the action range, where a
    fresh policy starts, is SVDD's uniform allocation).
    With ``early_accept=True`` (RBF's rule) the first proposal that beats the best reward so far r* is taken
    and the rest of the quota stays in the budget; otherwise (and always at decision 0 and the last one) the
    best of the q proposals is taken.

    With ``chains=C > 1`` (quota mode only) the generation runs C independent chains of budget // C NFE each
    (as ``run_quota_method``) and the action is ``Box([0, 1]^2)``: the quota fraction f, applied to each running
    chain with its own remaining NFE, and a stop signal: above ½ (from decision 1 on, while two or more chains
    run) the running chain of lowest current reward is stopped before the decision and its unspent NFE move to
    the others (``QuotaChains.stop``). Stopping at decision 1 chooses fewer chains; the output is the best
    running chain's x̂0.

    With ``resample=True`` (needs ``chains > 1``) the action gains a third value, the choice between proposing
    and resampling: above ½ a stop resamples instead (``QuotaChains.resample``): the stopped chain's unspent NFE
    buy fresh plain trajectories (best-of-N's draws, steps + 1 NFE each) and only the remainder moves to the
    others. Stopping all but one chain at decision 1 this way is best-of-N beside one step-wise chain. The output
    is the best x̂0 among the running chains and the resampled ones' fresh trajectories.

    ``mode="stop"`` (one env step per proposal): ``Discrete(2)``, 0 = propose again, 1 = accept now (move on
    with the best proposal of this decision). The first proposal of a decision is always drawn; acceptance is
    forced once the decision has drawn all the budget allows (one NFE kept for each later decision).

    Observation (float32): decision index / (steps + 1), remaining NFE / budget, symlog r*, symlog of the
    previous decision's best reward, proposals used by the previous decision / the uniform share
    budget / (steps + 1), symlog of the reward trend (r* now minus r* one decision ago), whether the previous
    decision accepted early (all of the best running chain, with the running chains' remaining NFE summed);
    with ``chains > 1`` also the running chains / C and symlog of the best minus the worst running reward; with
    ``resample`` also symlog of the best fresh trajectory's reward (−20 before any); with ``observe_budget``
    also ln(budget / (chains·(steps + 1))); in stop
    mode also the proposals of this decision / the uniform share, symlog of its best reward and of its last
    proposal's reward. symlog(r) = sign(r)·log1p(|r|), clipped to ±20.

    With a list of budgets (``budget=[22, 33, 50]``) each episode draws its budget uniformly from the list with
    the env's generator (after the episode's seed), so one agent trains across budgets; ``info["budget"]`` at
    reset names it. ``observe_budget=True`` adds ln(budget / (chains·(steps + 1))), the budget over its minimum,
    to the observation so that the agent can tell the budgets apart; remaining NFE / budget is observed either way.

    Reward: 0 until the end, then the verifier reward of the final sample minus ``nfe_weight``·NFE/budget.
    A verifier that returns NaN scores that proposal −inf (``nan_policy="worst"``, never selected while a finite
    one exists; ``"raise"`` stops instead); a non-finite final reward ends with reward −20 and ``info["failure"]``.
    Info: ``cost`` (NFE), ``reward`` and ``heldout_reward`` (the held-out verifier's) at the end, ``quotas``, and
    ``wrong_mode`` (1.0 when the final x̂0's nearest mixture mode is not a target mode, NaN for tasks without modes).

    Args:
        task: The task, one of ``FLOW_TASKS`` (flow model, verifier and held-out verifier).
        budget: The total NFE of the generation, an int >= ``chains·(steps + 1)``, or a non-empty list of such
            ints, one drawn per episode.
        steps: The sampler's transitions (>= 1); the generation makes ``steps + 1`` decisions.
        mode: ``"quota"`` or ``"stop"`` (see above).
        sde: The sampler's mode, one of ``MODES``: ``"ode"``, ``"linear-sde"`` or ``"vp-sde"``.
        early_accept: RBF's early acceptance.
        nfe_weight: The reward's price of the whole budget (>= 0).
        diffusion_norm: c of the SDE's diffusion g(t) = c·t² (>= 0).
        time_grid: ``"uniform"`` or ``"exp"`` (``FlowSampler``).
        t_end: The grid's last time, in linear time, in (0, 0.5).
        target: The digit class of the ``digits`` task.
        nan_policy: ``"worst"`` or ``"raise"``: what a NaN verifier reward does (see Reward above).
        action: ``"fraction"`` or ``"log_share"``: the quota-mode action encoding (see above).
        chains: C, the independent chains of a generation (an int >= 1; > 1 needs ``mode="quota"``).
        resample: Whether the action chooses between moving a stopped chain's NFE and resampling with it (a bool;
            True needs ``chains > 1``).
        observe_budget: Whether the observation holds ln(budget / (chains·(steps + 1))) (a bool).
        render_mode: None (this env does not render).

    Raises:
        ValueError: If a kwarg is out of range.
    """

    metadata = {"render_modes": []}
    metrics = (Metric("reward", True, "verifier reward of the final sample"),
               Metric("heldout_reward", True, "held-out verifier's reward of the final sample"))
    cost_unit = "NFE"
    summary_keys = ("wrong_mode",)
    # what a trained agent's env must match
    agent_kwargs = ("mode", "action", "early_accept", "steps", "chains", "resample", "observe_budget")

    def __init__(self, task: str = "gmm-2d-compositional", budget: int | Sequence[int] = 100, steps: int = 10,
                 mode: str = "quota", sde: str = "linear-sde", early_accept: bool = True, nfe_weight: float = 0.0,
                 diffusion_norm: float = 3.0, time_grid: str = "uniform", t_end: float = 0.02, target: int = 0,
                 nan_policy: str = "worst", action: str = "fraction", chains: int = 1, resample: bool = False,
                 observe_budget: bool = False, render_mode: str | None = None) -> None:
        if task not in FLOW_TASKS:
            raise ValueError(f"task must be one of {list(FLOW_TASKS)}, got {task!r}")
        if mode not in ENV_MODES:
            raise ValueError(f"mode must be one of {list(ENV_MODES)}, got {mode!r}")
        if action not in ACTIONS:
            raise ValueError(f"action must be one of {list(ACTIONS)}, got {action!r}")
        if sde not in MODES:
            raise ValueError(f"sde must be one of {list(MODES)}, got {sde!r}")
        if time_grid not in TIME_GRIDS:
            raise ValueError(f"time_grid must be one of {list(TIME_GRIDS)}, got {time_grid!r}")
        if isinstance(steps, bool) or not (isinstance(steps, int) and steps >= 1):
            raise ValueError(f"steps must be an int >= 1, got {steps!r}")
        early_accept = require_bool("early_accept", early_accept)
        if isinstance(chains, bool) or not (isinstance(chains, (int, np.integer)) and chains >= 1):
            raise ValueError(f"chains must be an int >= 1, got {chains!r}")
        if chains > 1 and mode != "quota":
            raise ValueError(f"chains > 1 needs mode='quota', got mode={mode!r} with chains={chains}")
        resample = require_bool("resample", resample)
        if resample and chains < 2:
            raise ValueError(f"resample=True needs chains >= 2 (a chain to resample beside one running), got {chains}")
        self.budgets = _budgets(budget, chains * (steps + 1))
        observe_budget = require_bool("observe_budget", observe_budget)
        require_nonnegative("nfe_weight", nfe_weight)
        if render_mode is not None:
            raise ValueError(f"render_mode must be None (this env does not render), got {render_mode!r}")
        self.task = make_task(task, target=target, nan_policy=nan_policy)
        self.sampler = FlowSampler(self.task.flow, sde, steps=steps, t_end=t_end, time_grid=time_grid,
                                   diffusion_norm=diffusion_norm)
        self.steps, self.mode, self.action = steps, mode, action
        self.early_accept, self.nfe_weight = bool(early_accept), float(nfe_weight)
        self.n_chains, self.resample, self.observe_budget = int(chains), resample, observe_budget
        self._set_budget(self.budgets[0])
        size = (7 if mode == "quota" else 10) + (2 if chains > 1 else 0) + int(resample) + int(observe_budget)
        self.observation_space = spaces.Box(-SYMLOG_RANGE, SYMLOG_RANGE, shape=(size,), dtype=np.float32)
        self._action_size = 1 if chains == 1 else 2 + int(resample)
        self.action_space = spaces.Box(0.0, 1.0, shape=(self._action_size,), dtype=np.float32) \
            if mode == "quota" else spaces.Discrete(2)
        self.chains: QuotaChains | None = None

    # -- helpers for hand-made controllers -------------------------------------------------------------
    def baseline_action(self, **parameters: int) -> np.ndarray:
        """The quota-mode action that yields ``quota`` proposals at the current decision (``quota=17``)."""
        check_parameters(self, parameters, ("quota",))
        quota, chain = parameters["quota"], self.chains.best_chain()
        remaining = int(self.chains.remaining[chain])
        if self.action == "fraction":
            value = min(1.0, quota / remaining)
        else:
            share = self._share(chain)
            value = 0.5 if share <= 1 else min(1.0, math.log(quota) / (2 * math.log(share)))
        return np.array([value] + [0.0] * (self._action_size - 1), dtype=np.float32)

    def _set_budget(self, budget: int) -> None:
        self.budget, self.uniform_share = budget, budget / (self.steps + 1)

    def _share(self, chain: int) -> float:
        return float(self.chains.remaining[chain]) / (self.chains.decisions - self.chains.decision)

    def _quotas(self, fraction: float) -> np.ndarray:
        """Each chain's quota for ``fraction`` (0 for a stopped chain)."""
        quotas = np.zeros(self.n_chains, dtype=np.int64)
        for chain in np.flatnonzero(self.chains.alive):
            remaining, limit = int(self.chains.remaining[chain]), int(self.chains.max_quota[chain])
            quota = fraction * remaining if self.action == "fraction" else self._share(chain) ** (2 * fraction)
            quotas[chain] = int(np.clip(round(quota), 1, limit))
        return quotas

    def _fraction(self, action: Any) -> tuple[float, bool, bool]:
        """The quota-mode action as (a fraction in [0, 1], stop, resample): shape (1,) (a scalar too) or, with
        several chains, (2,) ((3,) with ``resample``); finite; clipped into range."""
        shapes = ((), (1,)) if self.n_chains == 1 else ((self._action_size,),)
        try:
            value = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"action must be numbers in [0, 1] of shape {shapes[-1]}, got {action!r}") from None
        if value.shape not in shapes:
            raise ValueError(f"action must have shape {shapes[-1]}, got shape {value.shape}")
        if not np.all(np.isfinite(value)):
            raise ValueError(f"action must be finite, got {action!r}")
        value = np.clip(value.reshape(-1), 0.0, 1.0)
        return float(value[0]), bool(len(value) > 1 and value[1] > 0.5), bool(len(value) > 2 and value[2] > 0.5)

    # -- gym API ---------------------------------------------------------------------------------------
    def _observation(self) -> np.ndarray:
        chains, decision = self.chains, self.chains.decision
        previous, lead = decision - 1, chains.best_chain()
        best = float(chains.best_reward[lead])
        values = [decision / (self.steps + 1), chains.remaining[chains.alive].sum() / self.budget, symlog(best),
                  symlog(float(chains.step_best[lead, previous])) if previous >= 0 else -SYMLOG_RANGE,
                  chains.used[lead, previous] / self.uniform_share if previous >= 0 else 0.0,
                  symlog(best - self._best_before) if previous >= 1 else 0.0,
                  float(chains.early[lead, previous]) if previous >= 0 else 0.0]
        if self.n_chains > 1:
            running = chains.reward[chains.alive]
            values += [chains.alive.sum() / self.n_chains,
                       symlog(float(running.max() - running.min())) if previous >= 0 else 0.0]
        if self.resample:
            fresh = chains.reward[chains.finished]
            values.append(symlog(float(fresh.max())) if len(fresh) else -SYMLOG_RANGE)
        if self.observe_budget:
            values.append(math.log(self.budget / (self.n_chains * (self.steps + 1))))
        if self.mode == "stop":
            pool = chains.pool_rewards(0) if self._open else np.empty(0)
            values += [len(pool) / self.uniform_share, symlog(float(pool.max())) if len(pool) else -SYMLOG_RANGE,
                       symlog(float(pool[-1])) if len(pool) else -SYMLOG_RANGE]
        return np.clip(np.array(values, dtype=np.float32), -SYMLOG_RANGE, SYMLOG_RANGE)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start a generation; its proposals are seeded by ``seed`` (or one drawn from the env's generator), its
        budget drawn from the list of budgets (with one, that one)."""
        super().reset(seed=seed)
        episode_seed = int(self.np_random.integers(2**31)) if seed is None else int(seed)
        if len(self.budgets) > 1:
            self._set_budget(self.budgets[int(self.np_random.integers(len(self.budgets)))])
        self.chains = QuotaChains(self.sampler, self.task.verifier, self.budget // self.n_chains,
                                  [(episode_seed, TAG, chain) for chain in range(self.n_chains)])
        self._best_before, self._open, self._seed = -np.inf, False, episode_seed
        if self.mode == "stop":
            self._open_decision()
        return self._observation(), {"cost": 0, "seed": episode_seed, "budget": self.budget}

    def _open_decision(self) -> None:
        self.chains.begin()
        self.chains.draw([1])
        self._open = True

    def step(self, action):
        """Make the current decision (quota mode) or take one more proposal or accept (stop mode)."""
        if self.chains is None or self.chains.done:
            raise RuntimeError("call reset() before step() (the episode has ended)")
        best_before = float(self.chains.best_reward[self.chains.best_chain()])
        if self.mode == "quota":
            fraction, stop, resample = self._fraction(action)
            if stop and self.chains.decision > 0 and self.chains.alive.sum() > 1:
                running = np.flatnonzero(self.chains.alive)
                weakest = int(running[np.argmin(self.chains.reward[running])])
                (self.chains.resample if resample else self.chains.stop)(weakest)
            self.chains.advance(self._quotas(fraction), self.early_accept)
            self._best_before = best_before
        else:
            if action not in (0, 1):
                raise ValueError(f"action must be 0 (propose again) or 1 (accept) in stop mode, got {action!r}")
            pool = self.chains.pool_rewards(0)
            if action == 1 or len(pool) >= int(self.chains.max_quota[0]):
                index = int(np.argmax(pool))
                early = bool(pool[index] > self.chains.best_reward[0]) and self.chains.decision > 0
                self.chains.commit([index], [len(pool)], [len(pool)], [early])
                self._best_before, self._open = best_before, False
                if not self.chains.done:
                    self._open_decision()
            else:
                self.chains.draw([1])
        terminated = self.chains.done
        info: dict[str, Any] = {"cost": int(self.chains.nfe.sum() + (len(self.chains.pool_rewards(0)) if self._open
                                                                     else 0)), "seed": self._seed}
        reward = 0.0
        if terminated:
            chain = self.chains.output_chain()
            final, x0 = float(self.chains.reward[chain]), self.chains.x0[chain : chain + 1]
            heldout = float(self.task.heldout(x0)[0])
            info.update(reward=final, heldout_reward=heldout, quotas=self.chains.used[chain].tolist(),
                        wrong_mode=self.task.wrong_mode(x0))
            reward = final - self.nfe_weight * self.chains.nfe.sum() / self.budget
            if not math.isfinite(reward):
                info["failure"] = "non-finite verifier reward"
                reward = -SYMLOG_RANGE
        return self._observation(), float(reward), terminated, False, info


def _budgets(budget: Any, minimum: int) -> tuple[int, ...]:
    """``budget`` (an int or a non-empty list of ints, each >= ``minimum``) as a tuple of ints.

    Raises:
        ValueError: Naming ``budget`` and the allowed values.
    """
    values = list(budget) if isinstance(budget, (list, tuple)) else [budget]
    if not values or not all(not isinstance(value, bool) and isinstance(value, (int, np.integer)) and value >= minimum
                             for value in values):
        raise ValueError(f"budget must be an int >= chains·(steps + 1) = {minimum} (one NFE per decision and chain) "
                         f"or a non-empty list of such ints, got {budget!r}")
    return tuple(int(value) for value in values)
