"""Every budgeted generation method of the inference-time-scaling family behind one call.

``run_method(name, sampler, verifier, budget, seeds, **options)`` returns a ``SearchResult`` with exact
per-generation NFE (never above ``budget``) and verifier calls. Names and their options:

- ``bon``: best-of-N (``particles``); ``sop``: Search over Paths (``beam``, ``width``, ``forward``, ``backward``);
  ``smc``: SMC / FK steering (``particles``, ``potential``, ``lam``, ``ess_threshold``); see ``particle_methods``.
- ``svdd``, ``linear``, ``rbf``: per-step quotas on ``chains`` independent chains (default 2, as in Kim et al.'s
  setup); ``rbf`` also takes ``init_fraction``; see ``chains``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from adaptstep.flow import particle_methods
from adaptstep.flow.chains import LinearQuota, RolloverQuota, UniformQuota, run_quota_method
from adaptstep.flow.result import SearchResult
from adaptstep.flow.sampler import FlowSampler
from adaptstep.flow.verifiers import Verifier


def _quota(policy: Callable[..., Any]) -> Callable[..., SearchResult]:
    def run(sampler, verifier, budget, seeds, *, chains: int = 2, **options: Any) -> SearchResult:
        return run_quota_method(sampler, verifier, budget, seeds, policy(**options), chains=chains)

    return run


METHODS: dict[str, Callable[..., SearchResult]] = {
    "bon": particle_methods.best_of_n,
    "sop": particle_methods.search_over_paths,
    "smc": particle_methods.smc,
    "svdd": _quota(UniformQuota),
    "linear": _quota(LinearQuota),
    "rbf": _quota(RolloverQuota),
}


def run_method(name: str, sampler: FlowSampler, verifier: Verifier, budget: int, seeds: Sequence[int],
               **options: Any) -> SearchResult:
    """Run method ``name`` (one of ``METHODS``) for one generation per seed within ``budget`` NFE each."""
    if name not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {name!r}")
    try:
        result = METHODS[name](sampler, verifier, budget, list(seeds), **options)
    except TypeError as error:
        raise ValueError(f"method {name!r} got an unknown option: {error}") from None
    result.method = name
    return result
