"""``adaptstep/DiffusionSampler-v0``: pick the next timestep (and solver order) of a DPM-Solver++ or UniPC sampler."""

from __future__ import annotations

import functools
import math
import time
from typing import Any

import numpy as np
from gymnasium import spaces

from adaptstep.core.contract import AdaptiveEnv, Metric, check_parameters
from adaptstep.core.settings import require_choice, require_positive
from adaptstep.diffusion import quality
from adaptstep.diffusion.process import PROCESS_SOLVERS, SamplingProcess, baseline_error, load_sampler_model
from adaptstep.nn.solvers import FINAL_ORDER_RULES, lowers_final_orders
from adaptstep.nn.timesteps import TIMESTEPS

MIN_LAMBDA_STEP = 1e-6  # the smallest λ step and the smallest λ range a step may leave before t_min
ERROR_RANGE = (1e-12, 1e12)  # the reward's log10 is taken of the error clipped to this range
OBSERVATION_LOW = np.array([0, 0, 0, 0, -8, -8, -8, 0], dtype=np.float32)
OBSERVATION_HIGH = np.array([1, 1, 1, 1, 8, 8, 8, 1e6], dtype=np.float32)
REWARDS = ("log_rmse", "mse")  # the terminal reward's statistic (see DiffusionSamplerEnv)
SCALE_BATCHES = 16  # noise seeds 0…15 set the "mse" reward's default scale


def _clip_error(error: float) -> float:
    return min(max(error, ERROR_RANGE[0]), ERROR_RANGE[1])


def mse_reward(sample_errors: list[float], baseline_mse: float, scale: float, floor: float) -> float:
    """The ``"mse"`` terminal reward r = (baseline_mse − mean e_i²) / scale of per-sample errors e_i, compressed below −floor.

    mean e_i² is the batch's MSE; averaged over episodes it is the pooled MSE of every sample, so maximising the
    expected reward minimises the pooled RMSE, and a mode-switched sample costs its own e² / (batch · scale),
    whatever the rest of its batch. Below −floor, r becomes −floor·(1 + ln(−r/floor)) (continuous, still decreasing,
    but logarithmic): an untrained policy's diverged batches (a multistep step far longer than the one before can blow
    up) would otherwise swamp PPO's value loss, and a hard clip would leave no signal when every batch reaches it.
    Non-finite errors count as the clip's top (1e12).

    Args:
        sample_errors: Each sample's endpoint RMS error.
        baseline_mse: A per-noise constant subtracted (0 for none): the reward baseline's MSE on the same noise.
        scale: The reward's unit, > 0.
        floor: The lowest reward is −floor.
    """
    squared = np.square(np.clip(np.nan_to_num(np.asarray(sample_errors, dtype=np.float64), nan=ERROR_RANGE[1]),
                                0.0, ERROR_RANGE[1]))
    reward = (baseline_mse - float(squared.mean())) / scale
    return reward if reward >= -floor else -floor * (1.0 + math.log(-reward / floor))


@functools.lru_cache(maxsize=64)
def default_mse_scale(model: str, batch_size: int, reference_steps: int, timesteps: str, nfe: int, order: int,
                      third_order: str, lower_order_final: str, solver: str) -> float:
    """The mean MSE of the reward baseline over the noise seeds 0…15 (the ``"mse"`` reward's default unit)."""
    return float(np.mean([_clip_error(baseline_error(model, batch_size, seed, reference_steps, timesteps, nfe, order,
                                                     third_order, lower_order_final, solver)) ** 2
                          for seed in range(SCALE_BATCHES)]))


class DiffusionSamplerEnv(AdaptiveEnv):
    """Sample one batch from noise to data with at most ``nfe`` denoiser calls, choosing every step.

    Each env step is one multistep step (1 NFE) in log-SNR λ = log α − log σ of ``solver``: ``"dpmpp"``
    (DPM-Solver++, default) or ``"unipc-bh1"`` / ``"unipc-bh2"`` (UniPC with its corrector, ``nn.solvers.UniPC``).
    Action: ``Box([0, 1])``: the fraction f of the remaining λ range this step covers,
    λ_next = λ_t + f·(λ_end − λ_t), clipped to [``min_fraction``, 1]; a step covers at least 1e-6 in λ and
    goes straight to t_min when it would leave less than that (the episode then ends with fewer NFE).
    With ``choose_order=True`` a second
    value u ∈ [0, 1] picks the order 1 + ⌊3u⌋ (1 = DDIM, 2 = 2M, 3 = 3M); with ``choose_solver=True`` a further
    value v ∈ [0, 1] picks this step's update ``PROCESS_SOLVERS[⌊3v⌋]`` (DPM-Solver++, UniPC bh1, UniPC bh2) from
    one shared history of denoiser outputs (``nn.solvers.SwitchingSolver``: a UniPC step is corrected at the next
    evaluation, a DPM-Solver++ step is not), ``solver`` then being only the reward baseline's solver and the
    ``baseline_action`` default; otherwise every step uses
    ``order``, capped at what the solver's history allows (warm-up) and, where the final-order rule
    ``lower_order_final`` lowers at this ``nfe``, at the number of NFE left: ``"always"`` (default: every budget, as
    diffusers' UniPC), ``"below15"`` (nfe < 15, diffusers' DPMSolverMultistepScheduler), ``"below10"`` (nfe < 10,
    DPM-Solver's code and this env's rule before) or ``"never"``; so a fixed schedule matches ``solvers.sample``
    with the same rule.
    When one NFE is left, the
    step goes to the end whatever f says, so the last step always lands exactly on t_min.

    Observation (float32, 8 values): λ progress in [0, 1], remaining NFE / nfe, the last fraction, the last
    order / 3, log10 of the RMS change of x in the last step, log10 of the RMS change of x̂0 between the last
    two denoiser calls, log10 of the RMS difference between the last step's order-k and order-1 updates (a
    free local error estimate; the log10 terms are −8 before they exist), and the RMS of x; clipped to the
    Box's bounds (log10 terms to [−8, 8], the RMS to [0, 1e6]).

    Reward: 0 until the end, then −log10(RMSE) (RMSE clipped to [1e-12, 1e12]) with RMSE the endpoint error over
    the batch against the reference solution of the probability-flow ODE from the same noise (RK4 in λ,
    ``reference_steps`` steps). With ``reward_baseline=NAME`` (a hand schedule, e.g. ``logsnr_uniform``) the
    terminal reward is −log10(RMSE / RMSE_baseline), RMSE_baseline being that schedule's error with
    the env's solver of ``order`` (and final-order rule) at the same NFE on the same noise: a per-noise constant, so
    the optimal policy is unchanged while the reward's variance across noise batches drops (use it for training with a
    ``noise_pool``, whose baselines are cached). With ``reward="mse"`` the terminal reward is in MSE units instead,
    (MSE_baseline − MSE) / ``reward_scale`` (``mse_reward``; MSE = mean e_i² over the batch's per-sample errors,
    MSE_baseline = 0 without a reward baseline): its expectation is the pooled MSE that the benchmark's pooled RMSE
    measures, so each mode-switched sample costs in proportion to what it adds there, whereas −log10(RMSE) lets a
    batch that already holds a switch count little more than any other. ``reward_scale`` None means the reward
    baseline's mean MSE over the noise seeds 0…15 (``default_mse_scale``; ``"mse"`` needs one of the two); below
    −``reward_floor`` (default 10: a batch MSE ten units above its baseline's) it grows only logarithmically, so that
    the diverged batches of an untrained policy (1e4 units measured) do not swamp the value loss. The episode
    terminates at t_min (never truncated).

    Info: ``cost`` (NFE), ``error`` (endpoint RMSE over the batch, None before the end), ``sample_errors`` (each
    sample's endpoint RMS error over its dimensions, a list of ``batch_size`` floats at the end: pooled over episodes,
    √(mean e²) is the RMSE over all their samples), for a Gaussian-mixture model ``mode_switch_rate`` (the share of
    samples whose nearest component mean differs from their reference's), ``times`` (the schedule taken),
    ``orders``, ``solvers`` (each step's, with ``choose_solver``), ``noise_seed``, ``baseline_error`` at the end when
    a reward baseline is set, ``warning`` at the end when ``reference_steps`` < ``nfe`` (a reference coarser than the
    solver it judges: the row never counts on a Pareto front), and with
    ``distribution_metrics=True`` the endpoint's distances to data at the end (``sw2``, ``mmd``, ``frechet``
    for digits; see ``adaptstep.diffusion.quality``), which the harness then records as metrics;
    ``gym.make``'s ``WallTime`` adds ``score_seconds`` at the end (see ``timings``).
    Noise: with ``noise_pool=N`` a reset draws one of N noise batches (their
    references are cached: use it for training); with None every seed gives fresh noise (held-out evaluation).

    Args:
        model: The sampler model's name (see ``process.load_sampler_model``).
        nfe: The denoiser calls (steps) per episode, >= 1.
        batch_size: The samples per batch, >= 1.
        order: The solver order, 1, 2 or 3, when the agent does not choose it.
        choose_order: Whether the action has a second value that picks the order.
        min_fraction: The smallest fraction of the remaining λ range a step covers, in (0, 1].
        reference_steps: The RK4 steps of the reference solution, >= 1.
        noise_pool: The number of cached noise batches a reset draws from; None: fresh noise per seed.
        third_order: The third-order update, ``"exact"`` or ``"dpmsolver"``.
        solver: The solver, one of ``PROCESS_SOLVERS``.
        lower_order_final: The final-order rule, one of ``FINAL_ORDER_RULES``.
        reward_baseline: The hand schedule (a ``TIMESTEPS`` name) whose error the terminal reward is relative to.
        distribution_metrics: Whether the end's info holds the endpoint's distances to data.
        choose_solver: Whether the action has a further value that picks each step's solver.
        reward: The terminal reward's statistic, one of ``REWARDS``: ``"log_rmse"`` (default) or ``"mse"``.
        reward_scale: The ``"mse"`` reward's unit (> 0); None: the reward baseline's mean MSE on seeds 0…15.
        reward_floor: Below −reward_floor (> 0) the ``"mse"`` reward is compressed logarithmically.
        render_mode: Must be None (this env does not render).

    Raises:
        ValueError: If an argument is out of range or an unknown name.
    """

    metadata = {"render_modes": []}
    metrics = (Metric("error", description="endpoint RMSE against the reference ODE solution"),)
    cost_unit = "NFE"
    summary_keys = ("noise_seed", "sample_errors")
    timing_keys = ("score_seconds",)
    agent_kwargs = ("choose_order", "order", "min_fraction", "third_order", "solver",
                    "lower_order_final", "choose_solver")  # what a trained agent's env must match

    def __init__(
        self,
        model: str = "gmm-2d",
        nfe: int = 10,
        batch_size: int = 128,
        order: int = 2,
        choose_order: bool = False,
        min_fraction: float = 1e-4,
        reference_steps: int = 128,
        noise_pool: int | None = None,
        third_order: str = "exact",
        solver: str = "dpmpp",
        lower_order_final: str = "always",
        reward_baseline: str | None = None,
        distribution_metrics: bool = False,
        choose_solver: bool = False,
        reward: str = "log_rmse",
        reward_scale: float | None = None,
        reward_floor: float = 10.0,
        render_mode: str | None = None,
    ) -> None:
        if render_mode is not None:
            raise ValueError(f"render_mode must be None (this env does not render), got {render_mode!r}")
        load_sampler_model(model)  # validates the name (and caches the model)
        for name, value, lowest in (("nfe", nfe, 1), ("batch_size", batch_size, 1),
                                    ("reference_steps", reference_steps, 1)):
            if not (isinstance(value, (int, np.integer)) and value >= lowest):
                raise ValueError(f"{name} must be an integer >= {lowest}, got {value!r}")
        if order not in (1, 2, 3):
            raise ValueError(f"order must be 1, 2 or 3, got {order!r}")
        if not 0 < min_fraction <= 1:
            raise ValueError(f"min_fraction must lie in (0, 1], got {min_fraction}")
        if noise_pool is not None and not (isinstance(noise_pool, (int, np.integer)) and noise_pool >= 1):
            raise ValueError(f"noise_pool must be None or an integer >= 1, got {noise_pool!r}")
        if third_order not in ("exact", "dpmsolver"):
            raise ValueError(f"third_order must be 'exact' or 'dpmsolver', got {third_order!r}")
        if solver not in PROCESS_SOLVERS:
            raise ValueError(f"solver must be one of {PROCESS_SOLVERS}, got {solver!r}")
        if lower_order_final not in FINAL_ORDER_RULES:
            raise ValueError(f"lower_order_final must be one of {list(FINAL_ORDER_RULES)}, got {lower_order_final!r}")
        if reward_baseline is not None and reward_baseline not in TIMESTEPS:
            raise ValueError(f"reward_baseline must be None or one of {sorted(TIMESTEPS)}, got {reward_baseline!r}")
        self.render_mode = render_mode
        self.model, self.nfe, self.batch_size = model, int(nfe), int(batch_size)
        self.order, self.choose_order, self.min_fraction = order, choose_order, float(min_fraction)
        self.reference_steps, self.noise_pool, self.third_order = int(reference_steps), noise_pool, third_order
        self.reward_baseline, self.solver, self.lower_order_final = reward_baseline, solver, lower_order_final
        if not isinstance(choose_solver, (bool, np.bool_)):
            raise ValueError(f"choose_solver must be a bool, got {choose_solver!r}")
        self.choose_solver = bool(choose_solver)
        self.reward = require_choice("reward", reward, REWARDS)
        self.reward_scale = None if reward_scale is None else require_positive("reward_scale", reward_scale)
        if reward == "mse" and reward_scale is None and reward_baseline is None:
            raise ValueError("reward='mse' needs reward_scale or reward_baseline (whose mean MSE sets the unit)")
        self.reward_floor = require_positive("reward_floor", reward_floor)
        if reward == "log_rmse" and reward_scale is not None:
            raise ValueError("reward_scale applies to reward='mse' only")
        self._mixture = hasattr(load_sampler_model(model)[0], "means")
        if self._mixture:
            self.metrics = (*self.metrics, Metric("mode_switch_rate", description="share of samples whose nearest "
                                                  "mixture component differs from the reference's"))
        self._quality = quality.distribution_metrics(model) if distribution_metrics else None
        if self._quality is not None:
            self.metrics = (*self.metrics, *(Metric(name, description="distance to held-out data")
                                                   for name in quality.METRICS))
        self.action_space = spaces.Box(0.0, 1.0, shape=(1 + bool(choose_order) + self.choose_solver,),
                                       dtype=np.float32)
        self.observation_space = spaces.Box(OBSERVATION_LOW, OBSERVATION_HIGH, dtype=np.float32)
        self.process: SamplingProcess | None = None
        self._score_seconds = 0.0

    # -- action encoding, shared with the schedule baselines --------------------------------------------
    def baseline_action(self, **parameters: Any) -> np.ndarray:
        """The action that steps from the current state to ``t_next`` with ``order`` (e.g. ``t_next=0.4, order=2``).

        With ``choose_solver`` the parameter ``solver`` (default the env's) picks the step's solver too.
        """
        check_parameters(self, parameters, ("t_next", "order", "solver"), ("t_next", "order"))
        t_next, order = parameters["t_next"], parameters["order"]
        process = self.process
        fraction = (process.log_snr(t_next) - process.lam) / (process.lambda_end - process.lam)
        action = [min(max(fraction, 0.0), 1.0)]
        if self.choose_order:
            action.append((order - 0.5) / 3)
        if self.choose_solver:
            solver = parameters.get("solver", self.solver)
            if solver not in PROCESS_SOLVERS:
                raise ValueError(f"solver must be one of {PROCESS_SOLVERS}, got {solver!r}")
            action.append((PROCESS_SOLVERS.index(solver) + 0.5) / len(PROCESS_SOLVERS))
        elif parameters.get("solver", self.solver) != self.solver:
            raise ValueError(f"solver {parameters['solver']!r} needs choose_solver=True (the env runs {self.solver!r})")
        return np.array(action, dtype=np.float32)

    def _decode(self, action: Any) -> tuple[float, int, str]:
        value = np.asarray(action, dtype=np.float64)
        if value.shape != self.action_space.shape:
            raise ValueError(f"action must have shape {self.action_space.shape}, got shape {value.shape}")
        if not np.all(np.isfinite(value)):
            raise ValueError(f"action must be finite, got {action!r}")
        fraction = min(max(float(value[0]), self.min_fraction), 1.0)
        order = 1 + min(int(3 * min(max(float(value[1]), 0.0), 1.0)), 2) if self.choose_order else self.order
        solver = self.solver
        if self.choose_solver:
            count = len(PROCESS_SOLVERS)
            solver = PROCESS_SOLVERS[min(int(count * min(max(float(value[-1]), 0.0), 1.0)), count - 1)]
        return fraction, order, solver

    # -- gymnasium API -----------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Draw a noise batch and start sampling it from t_max."""
        super().reset(seed=seed)
        noise_seed = int(self.np_random.integers(self.noise_pool if self.noise_pool else 2**31))
        self.process = SamplingProcess(self.model, self.batch_size, noise_seed, self.reference_steps,
                                       self.third_order, self.solver, self.choose_solver)
        self._noise_seed, self._last = noise_seed, (0.0, 0)
        self._previous_x0: Any = None
        self._x0_change = 0.0
        self._score_seconds = 0.0
        return self._observation(), self._info(error=None)

    def step(self, action: Any):
        """Take one solver step (1 NFE) as the action says."""
        if self.process is None or self.process.done:
            raise RuntimeError("call reset() before step() (the episode has ended)")
        fraction, order, solver = self._decode(action)
        process = self.process
        remaining = self.nfe - process.nfe
        if remaining <= 1:
            fraction = 1.0
        if not self.choose_order and lowers_final_orders(self.lower_order_final, self.nfe):
            order = min(order, remaining)  # the final-order rule
        span = process.lambda_end - process.lam
        fraction = max(fraction, MIN_LAMBDA_STEP / span)  # distinct times, whatever the precision of t
        if (1.0 - fraction) * span < MIN_LAMBDA_STEP:
            fraction = 1.0  # a sliver of λ left over would make the next step degenerate: finish now
        lambda_next = process.lam + fraction * span
        t_next = process.t_end if fraction >= 1.0 else process.time_of(lambda_next)
        process.advance(t_next, order, solver)
        self._track_x0_change()
        self._last = (fraction, process.orders[-1])
        terminated = process.done
        if not terminated:
            return self._observation(), 0.0, False, False, self._info(None)
        started = time.perf_counter()
        info, reward = self._score()
        self._score_seconds = time.perf_counter() - started
        return self._observation(), reward, True, False, info

    def timings(self) -> dict[str, float]:
        """The seconds the last step spent scoring the endpoint (its error, distances and baseline).

        The sampling steps' own time is ``wall_time`` minus this.
        """
        return {"score_seconds": self._score_seconds}

    # -- helpers -----------------------------------------------------------------------------------------
    def _score(self) -> tuple[dict[str, Any], float]:
        """The final info and the terminal reward of the finished sample."""
        process = self.process
        error = process.error()
        info = self._info(error)
        info["sample_errors"] = process.sample_errors()
        if self.reference_steps < self.nfe:  # RK4 with fewer steps than the solver's own: the error is the reference's
            info["warning"] = (f"reference_steps={self.reference_steps} is coarser than the {self.nfe}-NFE solver it "
                               "judges: its endpoint error measures the reference")
        if self._mixture:
            info["mode_switch_rate"] = process.mode_switch_rate()
        if self._quality is not None:
            info.update(self._quality.metrics(process.x))
        baseline = (self.model, self.batch_size, self._noise_seed, self.reference_steps, self.reward_baseline,
                    self.nfe, self.order, self.third_order, self.lower_order_final, self.solver)
        if self.reward_baseline is not None:
            info["baseline_error"] = baseline_error(*baseline)
        if self.reward == "mse":
            scale = self.reward_scale or default_mse_scale(*baseline[:2], *baseline[3:])
            baseline_mse = _clip_error(info["baseline_error"]) ** 2 if self.reward_baseline is not None else 0.0
            return info, mse_reward(info["sample_errors"], baseline_mse, scale, self.reward_floor)
        reward = -math.log10(_clip_error(error))
        if self.reward_baseline is not None:
            reward += math.log10(_clip_error(info["baseline_error"]))
        return info, reward

    def _track_x0_change(self) -> None:
        latest = self.process.solver.latest_x0
        if self._previous_x0 is not None:
            self._x0_change = float((latest - self._previous_x0).pow(2).mean().sqrt())
        self._previous_x0 = latest

    def _observation(self) -> np.ndarray:
        process = self.process
        fraction, order = self._last
        observation = np.array([
            process.progress,
            (self.nfe - process.nfe) / self.nfe,
            fraction,
            order / 3,
            math.log10(max(process.step_change, 1e-8)),
            math.log10(max(self._x0_change, 1e-8)),
            math.log10(max(process.correction, 1e-8)),
            float(process.x.pow(2).mean().sqrt()),
        ], dtype=np.float32)
        return np.clip(np.nan_to_num(observation, nan=OBSERVATION_HIGH[-1]), OBSERVATION_LOW, OBSERVATION_HIGH)

    def _info(self, error: float | None) -> dict[str, Any]:
        process = self.process
        return {"cost": process.nfe, "error": error, "times": list(process.times), "orders": list(process.orders),
                "noise_seed": self._noise_seed, "sample_errors": None,
                **({"solvers": list(process.solvers)} if self.choose_solver else {}),
                **({"mode_switch_rate": None} if self._mixture else {})}
