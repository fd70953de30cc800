"""One compiled call per ThreeBody-v0 step: integration, energy, failure, reward and observation in Numba.

``step_system`` does for one system what ``ThreeBodyEnv.step``'s Python path does through ``ThreeBodyProcess``
(the same floating-point operations in the same order, so the results are bit-identical); ``step_batch`` runs it
over N systems for the vector env. Only the Numba backends (Hermite, Aarseth-Hermite, leapfrog) have a fused step.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from numba import njit

from adaptstep.threebody.integrators.base import FAILED, WORK_LIMIT
from adaptstep.threebody.integrators.hermite import AARSETH, COLLISION_TIME, hermite_loop
from adaptstep.threebody.integrators.leapfrog import leapfrog_advance
from adaptstep.threebody.kernels import total_energy

HERMITE, HERMITE_AARSETH, LEAPFROG = 0, 1, 2  # the fused kernels' backend codes
FUSED_BACKENDS = {"hermite": HERMITE, "hermite-aarseth": HERMITE_AARSETH, "leapfrog": LEAPFROG}
FAILURES = (None, "work_limit", "non_finite", "energy_error")  # info["failure"] by the kernels' failure code
NO_FAILURE, FAILURE_WORK_LIMIT, FAILURE_NON_FINITE, FAILURE_ENERGY = 0, 1, 2, 3

ERROR_FLOOR = 1e-16  # below double-precision round-off; keeps log10 finite
POSITION_SCALE = 10.0  # the reference's observation scales positions by 1/10
OBSERVATION_BOUND = 1e6  # observations are clipped to ±this so they stay finite in float32
OBSERVATION_SIZE = 22


class StepSettings(NamedTuple):
    """The env's constants that a fused step reads, passed to Numba as one float64 array (``as_array``): Numba
    unboxes an array several times faster than a tuple of mixed types.

    Attributes:
        backend: ``HERMITE``, ``HERMITE_AARSETH`` or ``LEAPFROG``.
        exact: 1 for ``interval_end="exact"``, 0 for ``"overshoot"``.
        interval: Physical time per env step.
        t_end: The episode's physical time.
        max_evaluations: The work limit of one interval.
        log_lo: log10 of the parameter's lower bound.
        log_hi: log10 of the parameter's upper bound.
        target_error: The reward's error floor.
        cost_weight: λ of the reward.
        cost_scale: c of the reward.
        max_energy_error: |ΔE/E0| above which the episode fails.
        failure_penalty: The penalty of a failed episode.
    """

    backend: int
    exact: int
    interval: float
    t_end: float
    max_evaluations: int
    log_lo: float
    log_hi: float
    target_error: float
    cost_weight: float
    cost_scale: float
    max_energy_error: float
    failure_penalty: float

    def as_array(self) -> np.ndarray:
        """The settings in their order as float64 (the ints are exact: all are far below 2**53)."""
        return np.array(self, dtype=np.float64)


@njit(cache=True, error_model="numpy", inline="always")
def write_observation(
    x: np.ndarray, v: np.ndarray, energy_error: float, last_action: float, time: float, t_end: float,
    out: np.ndarray,
) -> None:
    """Write the 22-value observation (see ``ThreeBodyEnv``) into the float32 array ``out``.

    Non-finite entries become 0 and the rest are clipped to ±``OBSERVATION_BOUND``.
    """
    closest2 = np.inf
    for i, k in ((0, 1), (0, 2), (1, 2)):
        dx = x[i, 0] - x[k, 0]
        dy = x[i, 1] - x[k, 1]
        dz = x[i, 2] - x[k, 2]
        d2 = dx * dx + dy * dy + dz * dz
        if d2 < closest2 or math.isnan(d2):  # np.min: nan wins
            closest2 = d2
            if math.isnan(d2):
                break
    closest = math.sqrt(closest2)
    error = energy_error if math.isfinite(energy_error) else 1.0
    for i in range(3):
        for k in range(3):
            out[3 * i + k] = x[i, k] / POSITION_SCALE
            out[9 + 3 * i + k] = v[i, k]
    out[18] = math.log10(max(error, ERROR_FLOOR)) / 10.0
    out[19] = last_action
    out[20] = math.log10(max(closest, ERROR_FLOOR)) if math.isfinite(closest) else 0.0
    out[21] = time / t_end
    for i in range(OBSERVATION_SIZE):
        value = out[i]
        if math.isnan(value):
            out[i] = 0.0
        elif value > OBSERVATION_BOUND:
            out[i] = OBSERVATION_BOUND
        elif value < -OBSERVATION_BOUND:
            out[i] = -OBSERVATION_BOUND


@njit(cache=True, error_model="numpy", inline="always")
def next_interval(time: float, intervals: int, exact: int, interval: float, t_end: float) -> tuple[int, float]:
    """The index and the end of the next interval (``ThreeBodyEnv.next_interval_end``)."""
    if exact:
        return intervals, time + min(interval, t_end - time)
    k = intervals + 1
    while k * interval <= time:  # a step longer than an interval passed this end already
        k += 1
    return k, min(k * interval, t_end)


@njit(cache=True, error_model="numpy", inline="always")
def step_system(
    masses: np.ndarray, state: np.ndarray, time: float, tau: float, evaluations: int, intervals: int,
    energy_error: float, initial_energy: float, parameter: float, settings: np.ndarray, observation: np.ndarray,
) -> tuple[float, float, int, int, float, float, float, int, bool]:
    """One env step of one system: integrate the next interval with ``parameter``, then score it.

    ``state`` (4, 3, 3): positions, velocities, accelerations and (Hermite) jerks, updated in place (one array: each
    array argument costs Numba's dispatch); ``observation`` is overwritten.

    Returns:
        The time reached, the next step's time scale (Hermite), the cumulative force evaluations, the interval
        index, the energy error, the reward, the last action rescaled to [-1, 1], the failure code and whether the
        episode is truncated.
    """
    backend, exact, max_evaluations = int(settings[0]), int(settings[1]), int(settings[4])
    interval, t_end, log_lo, log_hi, target_error = settings[2], settings[3], settings[5], settings[6], settings[7]
    cost_weight, cost_scale, max_energy_error, failure_penalty = settings[8], settings[9], settings[10], settings[11]
    x, v, a, j = state[0], state[1], state[2], state[3]
    intervals, target = next_interval(time, intervals, exact, interval, t_end)
    used, status = 0, 0
    if target > time:
        if backend == LEAPFROG:
            time, used, status = leapfrog_advance(masses, x, v, a, time, target, parameter, max_evaluations,
                                                  exact == 1)
        else:
            criterion = AARSETH if backend == HERMITE_AARSETH else COLLISION_TIME
            time, tau, used, status = hermite_loop(masses, x, v, a, j, time, tau, target, parameter,
                                                   max_evaluations, exact == 1, criterion)
    error_before, cost_before = energy_error, evaluations
    evaluations += used
    failure = FAILURE_WORK_LIMIT if status == WORK_LIMIT else FAILURE_NON_FINITE if status == FAILED else NO_FAILURE
    energy_error = abs(total_energy(masses, x, v) - initial_energy) / abs(initial_energy)
    finite = True
    for i in range(3):
        for k in range(3):
            finite = finite and math.isfinite(x[i, k]) and math.isfinite(v[i, k])
    if failure == NO_FAILURE and not (finite and math.isfinite(energy_error)):
        failure = FAILURE_NON_FINITE
    if failure == NO_FAILURE and energy_error > max_energy_error:
        failure = FAILURE_ENERGY
    cost_term = cost_weight * math.log10((cost_scale + evaluations) / (cost_scale + cost_before))
    if failure == NO_FAILURE:
        reward = -(math.log10(max(energy_error, target_error)) - math.log10(max(error_before, target_error)))
        reward -= cost_term
    else:
        reward = -failure_penalty - cost_term
    last_action = 2.0 * (math.log10(parameter) - log_lo) / (log_hi - log_lo) - 1.0
    truncated = failure == NO_FAILURE and time >= t_end * (1 - 1e-12)
    write_observation(x, v, energy_error, last_action, time, t_end, observation)
    return time, tau, evaluations, intervals, energy_error, reward, last_action, failure, truncated


@njit(cache=True, error_model="numpy")
def step_batch(
    masses: np.ndarray, state: np.ndarray, time: np.ndarray, tau: np.ndarray, evaluations: np.ndarray, intervals: np.ndarray, energy_error: np.ndarray,
    initial_energy: np.ndarray, last_action: np.ndarray, log_actions: np.ndarray, table: np.ndarray,
    active: np.ndarray, settings: np.ndarray, observations: np.ndarray, rewards: np.ndarray, failures: np.ndarray,
    truncated: np.ndarray, parameters: np.ndarray,
) -> None:
    """``step_system`` for every active system of a batch, the arrays (leading axis: system; ``state`` (N, 4, 3, 3))
    updated in place.

    The parameter of system i is ``table[int(log_actions[i])]`` when ``table`` is not empty (discrete actions),
    else 10 ** clip(log_actions[i], log_lo, log_hi) (``ThreeBodyEnv.parameter_from_action``); it goes to
    ``parameters``, the observations, rewards, failure codes and truncation flags to the output arrays.
    """
    log_lo, log_hi = settings[5], settings[6]
    for i in range(masses.shape[0]):
        if not active[i]:
            continue
        if table.shape[0] > 0:
            parameter = table[int(log_actions[i])]
        else:
            parameter = 10.0 ** min(max(log_actions[i], log_lo), log_hi)
        parameters[i] = parameter
        (time[i], tau[i], evaluations[i], intervals[i], energy_error[i], rewards[i], last_action[i], failures[i],
         truncated[i]) = step_system(masses[i], state[i], time[i], tau[i], evaluations[i], intervals[i],
                                     energy_error[i], initial_energy[i], parameter, settings, observations[i])
