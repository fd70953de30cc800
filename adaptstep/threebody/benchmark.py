"""Force-evaluation throughput of the backends (evaluations per wall-clock second)."""

import time

from adaptstep.threebody.integrators import BACKENDS, ReboundIntegrator, make_integrator
from adaptstep.threebody.system import ThreeBodySystem


def force_throughput(
    backend: str, system: ThreeBodySystem, t_end: float, parameter: float, repeats: int = 3
) -> dict:
    """Integrate ``system`` from 0 to ``t_end`` in one ``evolve`` call, ``repeats`` times.

    Numba backends are compiled and warmed up by a first, untimed run. REBOUND backends count the evaluations in
    one run with the counting callback and then time fresh simulations *without* the callback, so the Python call
    per evaluation does not distort the timing; the runs are deterministic, which is checked by requiring
    identical ``steps_done``.

    Args:
        backend: The integrator, a key of ``BACKENDS``.
        system: The initial conditions.
        t_end: The time to reach, in N-body units.
        parameter: The backend's time-step parameter.
        repeats: The timed runs (>= 1), of which the best counts.

    Returns:
        ``{"backend", "force_evaluations", "wall_seconds" (best of the repeats), "evaluations_per_second"}``.

    Raises:
        ValueError: If ``repeats`` < 1 or ``backend`` is unknown.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be >= 1, got {repeats}")
    counted = make_integrator(backend, system)
    evaluations = counted.evolve(t_end, parameter)
    cls = BACKENDS[backend]
    uses_rebound = issubclass(cls, ReboundIntegrator)
    best = float("inf")
    for _ in range(repeats):
        timed = cls(system, count_force_evaluations=False) if uses_rebound else cls(system)
        start = time.perf_counter()
        timed.evolve(t_end, parameter)
        best = min(best, time.perf_counter() - start)
        if uses_rebound and timed.steps_done != counted.steps_done:
            raise RuntimeError(f"timed run took {timed.steps_done} steps, counted run {counted.steps_done}")
    return {
        "backend": backend,
        "force_evaluations": evaluations,
        "wall_seconds": best,
        "evaluations_per_second": evaluations / best,
    }
