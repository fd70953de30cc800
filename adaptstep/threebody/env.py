"""``adaptstep/ThreeBody-v0``: pick the integrator's time-step parameter for the chaotic three-body problem.

Setup after Saz Ulibarrena & Portegies Zwart (2025, arXiv:2502.12809): every env step integrates one
interval of physical time with the time-step parameter the action chose.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from gymnasium import spaces

from adaptstep.core.contract import AdaptiveEnv, Metric
from adaptstep.core.settings import require_bool, require_int, require_positive
from adaptstep.threebody import (
    BACKENDS,
    YEAR,
    ThreeBodyProcess,
    pythagorean,
    reference_initial_conditions,
)
from adaptstep.threebody.fused import (
    FAILURES,
    FUSED_BACKENDS,
    LEAPFROG,
    OBSERVATION_BOUND,
    OBSERVATION_SIZE,
    StepSettings,
    step_system,
    write_observation,
)
from adaptstep.threebody.process import TRUSTED_ENERGY_FRACTION

INITIAL_CONDITIONS = ("reference", "pythagorean")
INTERVAL_ENDS = ("overshoot", "exact")


class ThreeBodyEnv(AdaptiveEnv):
    """Choose log10 of the integrator's time-step parameter once per interval of physical time.

    Action: ``Box(log10 lo, log10 hi, (1,))`` holding log10 of the backend's parameter (Hermite's η in
    dt = η·τ_coll or in Aarseth's criterion, leapfrog's dt, IAS15's and BS's ε); out-of-range values are clipped,
    non-finite ones raise.
    With ``discrete=True``: ``Discrete(n_actions)`` over ``logspace(lo, hi, n_actions)`` (the reference's
    10 values for DQN).

    Intervals: the k-th interval ends at min(k·interval, t_end). With ``interval_end="overshoot"`` (the default,
    as AMUSE's ``evolve_model`` in the reference code) an env step runs the integrator until its first step that
    reaches or passes the end of the next interval, without shortening that step, and the integrator keeps its
    adapted step across env steps (REBOUND: ``exact_finish_time=0``), so the chopping costs nothing: the steps
    are those of one uninterrupted run. The time reached is then >= the interval's end (a step longer than an
    interval skips the intervals it passes); the observation, the reward and ``info["time"]`` use it.
    ``interval_end="exact"`` shortens the last step to land exactly on ``time + interval``, which taxes adaptive
    integrators (IAS15 restarts its step at every interval).

    Whole-episode baselines: ``baseline_action(..., whole_episode=True)`` makes the next ``step`` integrate to
    ``t_end`` in one call of the backend (landing exactly on t_end, as ``sim.integrate(t_end)`` does), as users
    run the integrators; that one step then holds the whole episode's cost, error and wall time.

    Observation (float32, 22 values): positions / 10 (9), velocities (9), in N-body units and the
    centre-of-mass frame; log10|ΔE/E0| / 10; the last action rescaled to [-1, 1] (0 before the first);
    log10 of the closest pair distance; elapsed fraction t / t_end.

    Reward, with q(e) = log10(max(e, target_error)), e = |ΔE/E0|, C_t the force evaluations so far and
    c = ``cost_scale``:
        r_t = -(q(e_t) - q(e_{t-1})) - λ·log10((c + C_t) / (c + C_{t-1})),
    which telescopes to the return -log10(max(e_T, target_error) / target_error) - λ·log10(1 + C_T / c):
    decades of final error above the target against decades of total cost, the log-log scale of the
    Pareto plot. λ = ``cost_weight``; c keeps the first steps' cost from dominating. With λ below the
    integrator's order the best policy reaches ``target_error`` at the least cost.

    End: truncated when the time reached is >= ``t_end``; terminated with reward -``failure_penalty`` when
    |ΔE/E0| > ``max_energy_error``, the state is non-finite, or one interval needs more than
    ``max_force_evaluations_per_step`` (``info["failure"]`` says which).

    Speed: with the Numba backends a step is one compiled call (``adaptstep.threebody.fused.step_system``:
    integration, energy, failure, reward terms and observation), bit-identical to the ``ThreeBodyProcess`` path that
    the REBOUND backends and whole-episode steps take. ``gym.make_vec(..., vectorization_mode="vector_entry_point")``
    steps N systems in one call (``adaptstep.threebody.vector.ThreeBodyVectorEnv``).

    Info: ``cost`` (cumulative force evaluations), ``energy_error``, ``time`` (reached), ``system_seed`` (the reference
    initial condition's seed; None for pythagorean), ``parameter`` (the value used this step), ``failure`` (None
    or a reason), ``warning`` (None, or why ``energy_error`` cannot be trusted: an initial energy E0 ≈ 0, below
    ``TRUSTED_ENERGY_FRACTION`` of K + |U|, which makes any |ΔE/E0| huge); ``gym.make`` adds ``wall_time`` (see
    ``WallTime``).

    Args:
        backend: The integrator, a key of ``BACKENDS`` (Hermite, Aarseth-Hermite, leapfrog, IAS15, BS).
        initial_conditions: ``"reference"`` (a random system of the reference paper per episode, drawn from the
            reset seed) or ``"pythagorean"`` (Burrau's problem).
        interval: Physical time per env step, in N-body units (default 0.1·YEAR), <= ``t_end``.
        t_end: The episode's physical time, in N-body units (default 10·YEAR).
        interval_end: ``"overshoot"`` or ``"exact"`` (see Intervals above).
        discrete: Use the discrete action space.
        n_actions: The discrete actions (>= 2).
        parameter_range: (lo, hi) of the parameter, 0 < lo < hi; None for the backend's own range.
        target_error: The energy error below which the reward stops improving, in (0, 1).
        cost_weight: λ of the reward (>= 0).
        cost_scale: c of the reward, in force evaluations (> 0).
        max_energy_error: |ΔE/E0| above which the episode fails (> 0).
        failure_penalty: The penalty of a failed episode (>= 0).
        max_force_evaluations_per_step: The work limit of one interval (>= 1).
        render_mode: None or ``"rgb_array"``.

    Raises:
        ValueError: If a kwarg is out of range.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}
    metrics = (Metric("energy_error", description="relative energy error |E - E0| / |E0| at the end"),)
    cost_unit = "force evaluations"
    summary_keys = ("time", "system_seed")

    def __init__(
        self,
        backend: str = "hermite",
        initial_conditions: str = "reference",
        interval: float = 0.1 * YEAR,
        t_end: float = 10 * YEAR,
        interval_end: str = "overshoot",
        discrete: bool = False,
        n_actions: int = 10,
        parameter_range: tuple[float, float] | None = None,
        target_error: float = 1e-8,
        cost_weight: float = 1.0,
        cost_scale: float = 1000.0,
        max_energy_error: float = 0.1,
        failure_penalty: float = 10.0,
        max_force_evaluations_per_step: int = 2_000_000,
        render_mode: str | None = None,
    ) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {sorted(BACKENDS)}, got {backend!r}")
        if initial_conditions not in INITIAL_CONDITIONS:
            raise ValueError(
                f"initial_conditions must be one of {list(INITIAL_CONDITIONS)}, got {initial_conditions!r}"
            )
        if interval_end not in INTERVAL_ENDS:
            raise ValueError(f"interval_end must be one of {list(INTERVAL_ENDS)}, got {interval_end!r}")
        require_positive("t_end", t_end)
        require_positive("interval", interval)
        if interval > t_end:
            raise ValueError(f"interval must be <= t_end ({t_end}), got {interval}")
        if render_mode not in (None, *self.metadata["render_modes"]):
            raise ValueError(f"render_mode must be None or one of {self.metadata['render_modes']}, got {render_mode!r}")
        discrete = require_bool("discrete", discrete)
        require_int("n_actions", n_actions, 2)
        bounds = parameter_range if parameter_range is not None else BACKENDS[backend].parameter_range
        try:
            lo, hi = (float(bound) for bound in bounds)
        except (TypeError, ValueError):
            raise ValueError(f"parameter_range must be two numbers [lo, hi] with 0 < lo < hi, got {bounds!r}") \
                from None
        if not (0 < lo < hi and math.isfinite(hi)):
            raise ValueError(f"parameter_range must satisfy 0 < lo < hi, got {(lo, hi)}")
        for name, value in (("target_error", target_error), ("cost_weight", cost_weight),
                             ("failure_penalty", failure_penalty)):
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise ValueError(f"{name} must be a number, got {value!r}")
        require_int("max_force_evaluations_per_step", max_force_evaluations_per_step)
        if not 0 < target_error < 1:
            raise ValueError(f"target_error must lie in (0, 1), got {target_error}")
        if not (math.isfinite(cost_weight) and cost_weight >= 0):
            raise ValueError(f"cost_weight must be finite and >= 0, got {cost_weight}")
        require_positive("cost_scale", cost_scale)
        require_positive("max_energy_error", max_energy_error)
        if not (math.isfinite(failure_penalty) and failure_penalty >= 0):
            raise ValueError(f"failure_penalty must be finite and >= 0, got {failure_penalty}")
        if max_force_evaluations_per_step < 1:
            raise ValueError(f"max_force_evaluations_per_step must be >= 1, got {max_force_evaluations_per_step}")

        self.backend = backend
        self.render_mode = render_mode
        self.initial_conditions = initial_conditions
        self.interval = float(interval)
        self.t_end = float(t_end)
        self.interval_end = interval_end
        self.discrete = discrete
        self.log_range = (math.log10(lo), math.log10(hi))
        self.target_error = float(target_error)
        self.cost_weight = float(cost_weight)
        self.cost_scale = float(cost_scale)
        self.max_energy_error = float(max_energy_error)
        self.failure_penalty = float(failure_penalty)
        self.max_force_evaluations_per_step = int(max_force_evaluations_per_step)
        self.parameter_name: str = BACKENDS[backend].parameter_name

        if discrete:
            self.parameter_values = np.logspace(*self.log_range, n_actions)
            self.action_space = spaces.Discrete(n_actions)
        else:
            self.action_space = spaces.Box(*map(np.float32, self.log_range), shape=(1,), dtype=np.float32)
        self.observation_space = spaces.Box(-OBSERVATION_BOUND, OBSERVATION_BOUND, shape=(OBSERVATION_SIZE,),
                                            dtype=np.float32)
        self.settings: StepSettings | None = None if backend not in FUSED_BACKENDS else StepSettings(
            FUSED_BACKENDS[backend], int(interval_end == "exact"), self.interval, self.t_end,
            self.max_force_evaluations_per_step, *self.log_range, self.target_error, self.cost_weight,
            self.cost_scale, self.max_energy_error, self.failure_penalty,
        )  # None: the REBOUND backends step through ThreeBodyProcess in Python
        self._settings = None if self.settings is None else self.settings.as_array()
        self._hermite = backend in FUSED_BACKENDS and FUSED_BACKENDS[backend] != LEAPFROG  # has a time scale tau

        self.process: ThreeBodyProcess | None = None
        self._system_seed: int | None = None
        self._last_action = 0.0
        self._intervals = 0  # index k of the last interval end k·interval reached (overshoot mode)
        self._whole_episode = False  # set by baseline_action(..., whole_episode=True) for the next step
        self._track: list[np.ndarray] = []  # positions after every step, kept only when rendering
        self._warning: str | None = None  # info["warning"] of the episode (its E0 does not change)

    # -- action encoding, shared with the baseline controllers --------------------------------------
    def parameter_from_action(self, action: Any) -> float:
        """The backend's time-step parameter for ``action`` (validated; continuous values are clipped)."""
        if self.discrete:
            index = np.asarray(action)
            if index.shape not in ((), (1,)) or not np.issubdtype(index.dtype, np.integer):
                raise ValueError(f"action must be an integer in [0, {self.action_space.n}), got {action!r}")
            if not 0 <= int(index) < self.action_space.n:
                raise ValueError(f"action must be an integer in [0, {self.action_space.n}), got {int(index)}")
            return float(self.parameter_values[int(index)])
        if type(action) is np.ndarray and action.shape == (1,) and action.dtype.kind == "f":  # the common case, fast
            return self._parameter(float(action[0]))
        value = np.asarray(action, dtype=np.float64)
        if value.shape not in ((), (1,)):
            raise ValueError(f"action must have shape (1,), got shape {value.shape}")
        return self._parameter(float(value.reshape(())))

    def _parameter(self, log_value: float) -> float:
        if not math.isfinite(log_value):
            raise ValueError(f"action must be finite, got {log_value!r}")
        lo, hi = self.log_range
        return 10.0 ** min(max(log_value, lo), hi)

    def baseline_action(self, whole_episode: bool = False, **parameters: float) -> Any:
        """The action that makes the backend use one value of its parameter: the inverse of ``parameter_from_action``.

        Args:
            whole_episode: Also make the next ``step`` integrate from the current time to ``t_end`` in one call of
                the backend with this parameter (exact landing on t_end; the work limit is
                ``max_force_evaluations_per_step`` times the intervals left). Needs ``reset`` first.
            **parameters: ``eta=0.01`` for Hermite, ``epsilon`` for IAS15 and BS, ``dt`` for leapfrog, or
                ``param=`` for whichever.

        Returns:
            An element of ``action_space``.
        """
        if whole_episode and self.process is None:
            raise RuntimeError("call reset() before baseline_action(whole_episode=True)")
        if len(parameters) != 1 or not set(parameters) <= {self.parameter_name, "param"}:
            raise ValueError(f"baseline parameters must be {self.parameter_name}=VALUE (or param=VALUE) for backend "
                             f"{self.backend!r}, got {sorted(parameters)}")
        ((name, value),) = parameters.items()
        require_positive(name, value)
        log_value = math.log10(value)
        if not self.log_range[0] - 1e-9 <= log_value <= self.log_range[1] + 1e-9:
            lo, hi = (10.0**x for x in self.log_range)
            raise ValueError(f"{name} must lie in [{lo:g}, {hi:g}] (parameter_range), got {value:g}")
        if self.discrete:
            index = int(np.argmin(np.abs(np.log10(self.parameter_values) - log_value)))
            if not math.isclose(self.parameter_values[index], value, rel_tol=1e-3):
                allowed = ", ".join(f"{v:.3g}" for v in self.parameter_values)
                raise ValueError(f"{name} must be one of the discrete values [{allowed}], got {value:g}")
        self._whole_episode = bool(whole_episode)
        return index if self.discrete else np.array([log_value], dtype=np.float32)

    def next_interval_end(self) -> float:
        """The time the next env step integrates to (overshoot mode: at least; see the class docstring)."""
        return self._next_interval()[1]

    def _next_interval(self) -> tuple[int, float]:
        time = self.process.time
        if self.interval_end == "exact":
            return self._intervals, time + min(self.interval, self.t_end - time)
        k = self._intervals + 1
        while k * self.interval <= time:  # a step longer than an interval passed this end already
            k += 1
        return k, min(k * self.interval, self.t_end)

    # -- gymnasium API -------------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        """Start an episode: a new system (from ``seed`` for the reference initial conditions)."""
        super().reset(seed=seed)
        if self.initial_conditions == "reference":
            system_seed = int(self.np_random.integers(2**31))
            system = reference_initial_conditions(system_seed)
        else:
            system_seed, system = None, pythagorean()
        self._system_seed = system_seed
        self.process = ThreeBodyProcess(
            system, self.backend, max_force_evaluations_per_advance=self.max_force_evaluations_per_step
        )
        self._last_action = 0.0
        self._intervals = 0
        self._whole_episode = False
        self._track = [self.process.positions] if self.render_mode else []
        self._warning = None if self.process.energy_error_trusted else \
            f"E0 ≈ 0 (|E0| < {TRUSTED_ENERGY_FRACTION:g}·(K + |U|)): the relative energy error is not meaningful"
        return self._observation(), self._info(parameter=None, failure=None)

    def step(self, action: Any):
        """Integrate the next interval (or, armed by ``baseline_action``, the whole episode) with the action."""
        if self.process is None:
            raise RuntimeError("call reset() before step()")
        parameter = self.parameter_from_action(action)
        if self.settings is not None and not self._whole_episode:
            return self._step_fused(parameter)
        process = self.process
        error_before, cost_before = process.energy_error, process.force_evaluations
        if self._whole_episode:  # one backend call to t_end, armed by baseline_action(whole_episode=True)
            self._whole_episode = False
            intervals_left = max(math.ceil((self.t_end - process.time) / self.interval - 1e-9), 1)
            result = process.advance_to(self.t_end, parameter, exact=True,
                                        max_force_evaluations=self.max_force_evaluations_per_step * intervals_left)
        else:
            self._intervals, target = self._next_interval()
            result = process.advance_to(target, parameter, exact=self.interval_end == "exact")

        failure = result.failure
        if failure is None and result.energy_error > self.max_energy_error:
            failure = "energy_error"
        cost_term = self.cost_weight * math.log10(
            (self.cost_scale + process.force_evaluations) / (self.cost_scale + cost_before)
        )
        if failure is None:
            reward = -(self._log_error(result.energy_error) - self._log_error(error_before)) - cost_term
        else:
            reward = -self.failure_penalty - cost_term
        if self.render_mode:
            self._track.append(process.positions)
        lo, hi = self.log_range
        self._last_action = 2.0 * (math.log10(parameter) - lo) / (hi - lo) - 1.0

        terminated = failure is not None
        truncated = not terminated and process.time >= self.t_end * (1 - 1e-12)
        return self._observation(), float(reward), terminated, truncated, self._info(parameter, failure)

    def render(self) -> np.ndarray | None:
        """``rgb_array``: the bodies' tracks so far (sampled once per env step) as an RGB image."""
        if self.render_mode is None or self.process is None:
            return None
        import matplotlib.pyplot as plt  # here, not at the top: matplotlib loads only when rendering

        from adaptstep.threebody.plot import draw_orbits  # likewise

        figure, axes = plt.subplots(figsize=(4, 4), dpi=80)
        draw_orbits(axes, np.array(self._track))
        axes.set_title(f"t = {self.process.time:.2f}")
        figure.canvas.draw()
        image = np.asarray(figure.canvas.buffer_rgba())[..., :3].copy()
        plt.close(figure)
        return image

    # -- helpers -------------------------------------------------------------------------------------
    def _log_error(self, error: float) -> float:
        return math.log10(max(error, self.target_error))

    def _observation(self) -> np.ndarray:
        process = self.process
        observation = np.empty(OBSERVATION_SIZE, dtype=np.float32)
        write_observation(process.positions, process.velocities, process.energy_error, self._last_action,
                          process.time, self.t_end, observation)
        return observation

    def _step_fused(self, parameter: float):
        """``step`` of the Numba backends: one call of ``step_system``, then the Gymnasium bookkeeping."""
        process = self.process
        integrator = process.integrator
        observation = np.empty(OBSERVATION_SIZE, dtype=np.float32)
        hermite = self._hermite
        (time, tau, cost, self._intervals, energy_error, reward, self._last_action, failure, truncated) = step_system(
            integrator.masses, integrator._state, integrator._t, integrator._tau if hermite else 0.0,
            integrator.force_evaluations, self._intervals, process._energy_error, process.initial_energy, parameter,
            self._settings, observation)
        integrator._t, integrator.force_evaluations, process._energy_error = time, cost, energy_error
        if hermite:
            integrator._tau = tau
        if self.render_mode:
            self._track.append(process.positions)
        info = self._info_of(cost, energy_error, time, parameter, FAILURES[failure])
        return observation, reward, failure != 0, truncated, info

    def _info(self, parameter: float | None, failure: str | None) -> dict[str, Any]:
        process = self.process
        return self._info_of(int(process.force_evaluations), float(process.energy_error), float(process.time),
                             parameter, failure)

    def _info_of(self, cost: int, energy_error: float, time: float, parameter: float | None,
                 failure: str | None) -> dict[str, Any]:
        return {
            "cost": cost,
            "energy_error": energy_error,
            "time": time,
            "system_seed": self._system_seed,
            "parameter": parameter,
            "failure": failure,
            "warning": self._warning,
        }

