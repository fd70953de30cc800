"""Every budgeted generation method of the inference-time-scaling family behind one call.

``run_method(name, sampler, verifier, budget, seeds, **options)`` returns a ``SearchResult`` with exact
per-generation NFE (never above ``budget``) and verifier calls. Names and their options:

- ``bon``: best-of-N (``particles``); ``sop``: Search over Paths (``beam``, ``width``, ``forward``, ``backward``);
  ``smc``: SMC / FK steering (``particles``, ``potential``, ``lam``, ``ess_threshold``); see ``particle_methods``.
- ``svdd``, ``linear``, ``rbf``: per-step quotas on ``chains`` independent chains (default 2, as in Kim et al.'s
  setup); ``rbf`` also takes ``init_fraction``; see ``chains``.
"""

from __future__ import annotations

import inspect
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

    run.options = ("chains", *inspect.signature(policy).parameters)
    return run


def _options(method: Callable[..., SearchResult]) -> tuple[str, ...]:
    """The option names ``method`` accepts (its keyword-only parameters, or a quota policy's)."""
    if hasattr(method, "options"):
        return method.options
    parameters = inspect.signature(method).parameters.values()
    return tuple(p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY)


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
    """Run method ``name`` for one generation per seed within ``budget`` NFE each.

    Args:
        name: One of ``METHODS``.
        sampler: The flow sampler.
        verifier: The reward that guides the search.
        budget: The NFE of each generation.
        seeds: One generation per seed.
        **options: The method's options (see the module's description).

    Raises:
        ValueError: If ``name`` is unknown, an option is not the method's, or a value is out of range.
    """
    if name not in METHODS:
        raise ValueError(f"method must be one of {sorted(METHODS)}, got {name!r}")
    allowed = _options(METHODS[name])
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"options of method {name!r} must be among {list(allowed)}, got {unknown}")
    result = METHODS[name](sampler, verifier, budget, list(seeds), **options)
    result.method = name
    return result
