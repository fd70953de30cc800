"""``adaptstep/BudgetForcing-v0``: allocate a flow model's NFE budget across denoising steps (learned RBF)."""

from __future__ import annotations

import math
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

    ``mode="stop"`` (one env step per proposal): ``Discrete(2)``, 0 = propose again, 1 = accept now (move on
    with the best proposal of this decision). The first proposal of a decision is always drawn; acceptance is
    forced once the decision has drawn all the budget allows (one NFE kept for each later decision).

    Observation (float32): decision index / (steps + 1), remaining NFE / budget, symlog r*, symlog of the
    previous decision's best reward, proposals used by the previous decision / the uniform share
    budget / (steps + 1), symlog of the reward trend (r* now minus r* one decision ago), whether the previous
    decision accepted early; in stop mode also the proposals of this decision / the uniform share, symlog of
    its best reward and of its last proposal's reward. symlog(r) = sign(r)·log1p(|r|), clipped to ±20.

    Reward: 0 until the end, then the verifier reward of the final sample minus ``nfe_weight``·NFE/budget.
    A verifier that returns NaN scores that proposal −inf (``nan_policy="worst"``, never selected while a finite
    one exists; ``"raise"`` stops instead); a non-finite final reward ends with reward −20 and ``info["failure"]``.
    Info: ``cost`` (NFE), ``reward`` and ``heldout_reward`` (the held-out verifier's) at the end, ``quotas``.

    Args:
        task: The task, one of ``FLOW_TASKS`` (flow model, verifier and held-out verifier).
        budget: The total NFE of the generation, an int >= ``steps + 1``.
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
        render_mode: None (this env does not render).

    Raises:
        ValueError: If a kwarg is out of range.
    """

    metadata = {"render_modes": []}
    metrics = (Metric("reward", True, "verifier reward of the final sample"),
               Metric("heldout_reward", True, "held-out verifier's reward of the final sample"))
    cost_unit = "NFE"
    agent_kwargs = ("mode", "action", "early_accept", "steps")  # what a trained agent's env must match

    def __init__(self, task: str = "gmm-2d-compositional", budget: int = 100, steps: int = 10,
                 mode: str = "quota", sde: str = "linear-sde", early_accept: bool = True, nfe_weight: float = 0.0,
                 diffusion_norm: float = 3.0, time_grid: str = "uniform", t_end: float = 0.02, target: int = 0,
                 nan_policy: str = "worst", action: str = "fraction", render_mode: str | None = None) -> None:
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
        if isinstance(budget, bool) or not (isinstance(budget, (int, np.integer)) and budget >= steps + 1):
            raise ValueError(f"budget must be an int >= steps + 1 = {steps + 1} (one NFE per decision), got {budget!r}")
        require_nonnegative("nfe_weight", nfe_weight)
        if render_mode is not None:
            raise ValueError(f"render_mode must be None (this env does not render), got {render_mode!r}")
        self.task = make_task(task, target=target, nan_policy=nan_policy)
        self.sampler = FlowSampler(self.task.flow, sde, steps=steps, t_end=t_end, time_grid=time_grid,
                                   diffusion_norm=diffusion_norm)
        self.budget, self.steps, self.mode, self.action = int(budget), steps, mode, action
        self.early_accept, self.nfe_weight = bool(early_accept), float(nfe_weight)
        self.uniform_share = self.budget / (steps + 1)
        size = 7 if mode == "quota" else 10
        self.observation_space = spaces.Box(-SYMLOG_RANGE, SYMLOG_RANGE, shape=(size,), dtype=np.float32)
        self.action_space = spaces.Box(0.0, 1.0, shape=(1,), dtype=np.float32) if mode == "quota" \
            else spaces.Discrete(2)
        self.chains: QuotaChains | None = None

    # -- helpers for hand-made controllers -------------------------------------------------------------
    def baseline_action(self, **parameters: int) -> np.ndarray:
        """The quota-mode action that yields ``quota`` proposals at the current decision (``quota=17``)."""
        check_parameters(self, parameters, ("quota",))
        quota = parameters["quota"]
        remaining = int(self.chains.remaining[0])
        if self.action == "fraction":
            return np.array([min(1.0, quota / remaining)], dtype=np.float32)
        share = self._share()
        return np.array([0.5 if share <= 1 else min(1.0, math.log(quota) / (2 * math.log(share)))], dtype=np.float32)

    def _share(self) -> float:
        return float(self.chains.remaining[0]) / (self.chains.decisions - self.chains.decision)

    def _quota(self, fraction: float) -> int:
        remaining, limit = int(self.chains.remaining[0]), int(self.chains.max_quota[0])
        quota = fraction * remaining if self.action == "fraction" else self._share() ** (2 * fraction)
        return int(np.clip(round(quota), 1, limit))

    @staticmethod
    def _fraction(action: Any) -> float:
        """The quota-mode action as a fraction in [0, 1]: shape (1,) (or a scalar), finite; clipped into range."""
        try:
            value = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"action must be a number in [0, 1] of shape (1,), got {action!r}") from None
        if value.shape not in ((), (1,)):
            raise ValueError(f"action must have shape (1,), got shape {value.shape}")
        fraction = float(value.reshape(()))
        if not math.isfinite(fraction):
            raise ValueError(f"action must be finite, got {action!r}")
        return min(max(fraction, 0.0), 1.0)

    # -- gym API ---------------------------------------------------------------------------------------
    def _observation(self) -> np.ndarray:
        chains, decision = self.chains, self.chains.decision
        previous = decision - 1
        best = float(chains.best_reward[0])
        values = [decision / (self.steps + 1), chains.remaining[0] / self.budget, symlog(best),
                  symlog(float(chains.step_best[0, previous])) if previous >= 0 else -SYMLOG_RANGE,
                  chains.used[0, previous] / self.uniform_share if previous >= 0 else 0.0,
                  symlog(best - self._best_before) if previous >= 1 else 0.0,
                  float(chains.early[0, previous]) if previous >= 0 else 0.0]
        if self.mode == "stop":
            pool = chains.pool_rewards(0) if self._open else np.empty(0)
            values += [len(pool) / self.uniform_share, symlog(float(pool.max())) if len(pool) else -SYMLOG_RANGE,
                       symlog(float(pool[-1])) if len(pool) else -SYMLOG_RANGE]
        return np.clip(np.array(values, dtype=np.float32), -SYMLOG_RANGE, SYMLOG_RANGE)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start a generation; its proposals are seeded by ``seed`` (or one drawn from the env's generator)."""
        super().reset(seed=seed)
        episode_seed = int(self.np_random.integers(2**31)) if seed is None else int(seed)
        self.chains = QuotaChains(self.sampler, self.task.verifier, self.budget, [(episode_seed, TAG, 0)])
        self._best_before, self._open, self._seed = -np.inf, False, episode_seed
        if self.mode == "stop":
            self._open_decision()
        return self._observation(), {"cost": 0, "seed": episode_seed}

    def _open_decision(self) -> None:
        self.chains.begin()
        self.chains.draw([1])
        self._open = True

    def step(self, action):
        """Make the current decision (quota mode) or take one more proposal or accept (stop mode)."""
        if self.chains is None or self.chains.done:
            raise RuntimeError("call reset() before step() (the episode has ended)")
        best_before = float(self.chains.best_reward[0])
        if self.mode == "quota":
            fraction = self._fraction(action)
            self.chains.advance([self._quota(fraction)], self.early_accept)
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
        info: dict[str, Any] = {"cost": int(self.chains.nfe[0] + (len(self.chains.pool_rewards(0)) if self._open
                                                                   else 0)), "seed": self._seed}
        reward = 0.0
        if terminated:
            final = float(self.chains.reward[0])
            heldout = float(self.task.heldout(self.chains.x0[:1])[0])
            info.update(reward=final, heldout_reward=heldout, quotas=self.chains.used[0].tolist())
            reward = final - self.nfe_weight * self.chains.nfe[0] / self.budget
            if not math.isfinite(reward):
                info["failure"] = "non-finite verifier reward"
                reward = -SYMLOG_RANGE
        return self._observation(), float(reward), terminated, False, info
