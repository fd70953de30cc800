"""The native vector env of ThreeBody-v0: N systems stepped by one Numba call (``step_batch``).

``gym.make_vec("adaptstep/ThreeBody-v0", num_envs=N, vectorization_mode="vector_entry_point")`` builds it; it
equals N ``ThreeBodyEnv`` with the same kwargs seeded ``seed, seed + 1, …`` (as ``SyncVectorEnv`` seeds them).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from adaptstep.core.settings import require_int
from adaptstep.threebody.env import ThreeBodyEnv
from adaptstep.threebody.fused import FAILURES, FUSED_BACKENDS, LEAPFROG, OBSERVATION_SIZE, step_batch, write_observation

AUTORESET_MODES = {mode.value: mode for mode in (AutoresetMode.NEXT_STEP, AutoresetMode.SAME_STEP)}
INFO_KEYS = ("cost", "energy_error", "time", "system_seed", "parameter", "failure", "warning")


class ThreeBodyVectorEnv(VectorEnv):
    """N ThreeBody-v0 episodes (Numba backends) advanced together, one compiled call per step.

    Autoreset (Gymnasium 1.x): ``"NextStep"`` (the default, as ``SyncVectorEnv``): the step after an episode's end
    resets that system, returning its reset observation with reward 0 and its action ignored; ``"SameStep"``: an
    ending system is reset in the same step, its last observation and info in ``info["final_obs"]`` and
    ``info["final_info"]`` (what SB3's ``VecEnv`` expects). Info holds the single env's keys as arrays with their
    ``_key`` masks, as ``SyncVectorEnv`` gathers them (``parameter`` is None for systems reset instead of stepped).

    Args:
        num_envs: The number of systems (>= 1).
        autoreset_mode: ``"NextStep"`` or ``"SameStep"`` (or the ``AutoresetMode``).
        **kwargs: ``ThreeBodyEnv``'s kwargs; ``backend`` must be hermite, hermite-aarseth or leapfrog and
            ``render_mode`` None.

    Raises:
        ValueError: If a kwarg is out of range.
    """

    def __init__(self, num_envs: int = 1, autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
                 **kwargs: Any) -> None:
        require_int("num_envs", num_envs, 1)
        mode = autoreset_mode.value if isinstance(autoreset_mode, AutoresetMode) else autoreset_mode
        if mode not in AUTORESET_MODES:
            raise ValueError(f"autoreset_mode must be one of {sorted(AUTORESET_MODES)}, got {autoreset_mode!r}")
        kwargs.pop("max_episode_steps", None)  # gym.make_vec passes the spec's (None: the env ends itself)
        backend = kwargs.get("backend", "hermite")
        if backend not in FUSED_BACKENDS:
            raise ValueError(f"backend must be one of {sorted(FUSED_BACKENDS)} for the vector env (the others: "
                             f"vectorization_mode='sync'), got {backend!r}")
        if kwargs.get("render_mode") is not None:
            raise ValueError(f"render_mode must be None for the vector env, got {kwargs['render_mode']!r}")
        self.template = ThreeBodyEnv(**kwargs)  # validates the kwargs; resets build the systems through it
        self.settings = self.template.settings
        self._settings = self.settings.as_array()
        self.num_envs = n = int(num_envs)
        self.autoreset_mode = AUTORESET_MODES[mode]
        self.metadata = {"autoreset_mode": self.autoreset_mode, "render_modes": []}
        self.render_mode = None
        self.single_observation_space = self.template.observation_space
        self.single_action_space = self.template.action_space
        self.observation_space = batch_space(self.single_observation_space, n)
        self.action_space = batch_space(self.single_action_space, n)
        self._table = self.template.parameter_values if self.template.discrete else np.empty(0)

        self._masses = np.ones((n, 3))
        self._state = np.zeros((n, 4, 3, 3))  # positions, velocities, accelerations, jerks (ArrayStateIntegrator)
        self._time, self._tau, self._energy_error, self._initial_energy, self._last_action, self._parameters = (
            np.zeros(n) for _ in range(6))
        self._evaluations = np.zeros(n, dtype=np.int64)
        self._intervals = np.zeros(n, dtype=np.int64)
        self._system_seed = np.full(n, None, dtype=object)
        self._warning = np.full(n, None, dtype=object)
        self._observations = np.zeros((n, OBSERVATION_SIZE), dtype=np.float32)
        self._rewards = np.zeros(n)
        self._failures = np.zeros(n, dtype=np.int64)
        self._terminated = np.zeros(n, dtype=bool)
        self._truncated = np.zeros(n, dtype=bool)
        self._autoreset = np.zeros(n, dtype=bool)
        self._rngs: list[np.random.Generator | None] = [None] * n
        self._failure_names = np.array(FAILURES, dtype=object)

    # -- gymnasium API -------------------------------------------------------------------------------
    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        """Reset every system (or those of ``options["reset_mask"]``); ``seed``: an int (system i gets seed + i),
        a list of N seeds or None."""
        if seed is None or isinstance(seed, (int, np.integer)):
            seeds = [None if seed is None else int(seed) + i for i in range(self.num_envs)]
        elif len(seed) == self.num_envs:
            seeds = list(seed)
        else:
            raise ValueError(f"seed must be None, an int or a list of {self.num_envs} seeds, got {seed!r}")
        mask = np.ones(self.num_envs, dtype=bool) if not options or "reset_mask" not in options else \
            np.asarray(options["reset_mask"])
        if mask.shape != (self.num_envs,) or mask.dtype != np.bool_:
            raise ValueError(f"options['reset_mask'] must be a bool array of shape ({self.num_envs},)")
        for i in np.flatnonzero(mask):
            self._reset_system(int(i), seeds[i])
        self._autoreset[mask] = self._terminated[mask] = self._truncated[mask] = False
        return self._observations.copy(), self._info(mask, stepped=np.zeros(self.num_envs, dtype=bool))

    def step(self, actions: Any):
        """Step every system with its action (NextStep: systems that ended last step are reset instead)."""
        log_actions = self._log_actions(actions)
        resetting = self._autoreset.copy() if self.autoreset_mode == AutoresetMode.NEXT_STEP else \
            np.zeros(self.num_envs, dtype=bool)
        active = ~resetting
        step_batch(self._masses, self._state, self._time, self._tau, self._evaluations,
                   self._intervals, self._energy_error, self._initial_energy, self._last_action, log_actions,
                   self._table, active, self._settings, self._observations, self._rewards, self._failures,
                   self._truncated, self._parameters)
        self._terminated = self._failures != 0
        self._terminated[resetting] = self._truncated[resetting] = False
        self._rewards[resetting] = 0.0
        for i in np.flatnonzero(resetting):
            self._reset_system(int(i), None)
        ended = self._terminated | self._truncated
        info = self._info(np.ones(self.num_envs, dtype=bool), stepped=active)
        if self.autoreset_mode == AutoresetMode.SAME_STEP and ended.any():
            final_obs = np.full(self.num_envs, None, dtype=object)
            for i in np.flatnonzero(ended):
                final_obs[i] = self._observations[i].copy()
            final_info = {**info, **{f"_{key}": ended.copy() for key in INFO_KEYS}}
            info["final_info"], info["_final_info"] = final_info, ended.copy()
            info["final_obs"], info["_final_obs"] = final_obs, ended.copy()
            for i in np.flatnonzero(ended):
                self._reset_system(int(i), None)
            reset_info = self._info(ended, stepped=np.zeros(self.num_envs, dtype=bool))
            for key in INFO_KEYS:
                info[key] = np.where(ended, reset_info[key], info[key])
        self._autoreset = ended
        return (self._observations.copy(), self._rewards.copy(), self._terminated.copy(), self._truncated.copy(),
                info)

    # -- helpers -------------------------------------------------------------------------------------
    def _log_actions(self, actions: Any) -> np.ndarray:
        """The actions as float64 (log10 of the parameter, or the discrete index), validated."""
        if self.template.discrete:
            index = np.asarray(actions)
            n = self.single_action_space.n
            if index.shape != (self.num_envs,) or not np.issubdtype(index.dtype, np.integer) \
                    or np.any((index < 0) | (index >= n)):
                raise ValueError(f"actions must be {self.num_envs} integers in [0, {n}), got {actions!r}")
            return index.astype(np.float64)
        values = np.asarray(actions, dtype=np.float64)
        if values.shape not in ((self.num_envs,), (self.num_envs, 1)):
            raise ValueError(f"actions must have shape ({self.num_envs}, 1), got shape {values.shape}")
        values = values.reshape(self.num_envs)
        if not np.all(np.isfinite(values)):
            raise ValueError(f"actions must be finite, got {actions!r}")
        return values

    def _reset_system(self, i: int, seed: int | None) -> None:
        """Start system i as ``ThreeBodyEnv.reset`` does (its own random generator, seeded by ``seed``)."""
        if seed is not None or self._rngs[i] is None:
            self._rngs[i], _ = seeding.np_random(seed)
        template = self.template
        template._np_random = self._rngs[i]
        template.reset()
        integrator = template.process.integrator
        self._masses[i] = integrator.masses
        self._state[i] = integrator._state
        self._tau[i] = integrator._tau if self.settings.backend != LEAPFROG else 0.0
        self._time[i], self._evaluations[i], self._intervals[i] = integrator._t, integrator.force_evaluations, 0
        self._energy_error[i], self._initial_energy[i] = 0.0, template.process.initial_energy
        self._last_action[i] = 0.0
        self._system_seed[i], self._warning[i] = template._system_seed, template._warning
        write_observation(self._state[i, 0], self._state[i, 1], 0.0, 0.0, 0.0, template.t_end, self._observations[i])

    def _info(self, mask: np.ndarray, stepped: np.ndarray) -> dict[str, Any]:
        """The single env's info keys as arrays, each with its ``_key`` mask (``parameter``: None where not stepped)."""
        failures = self._failure_names[np.where(stepped, self._failures, 0)]
        parameters = np.full(self.num_envs, None, dtype=object)
        parameters[stepped] = self._parameters[stepped]
        info = {"cost": self._evaluations.copy(), "energy_error": self._energy_error.copy(),
                "time": self._time.copy(), "system_seed": self._system_seed.copy(), "parameter": parameters,
                "failure": failures, "warning": self._warning.copy()}
        for key in INFO_KEYS:
            info[f"_{key}"] = mask.copy()
        return info
