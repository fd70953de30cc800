"""The three-body family's baseline specs: ``ias15:epsilon=1e-9`` and the lookahead ``oracle:mu=1e-10``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from adaptstep.agents.baselines import FixedParameter
from adaptstep.threebody.oracle import LookaheadOracle


def ias15(name: str, env_overrides: Mapping[str, Any], epsilon: float = 1e-9) -> FixedParameter:
    """REBOUND's IAS15 with a fixed ε: the error-controlled reference integrator of the three-body env."""
    return FixedParameter(name, "epsilon", epsilon, {"backend": "rebound-ias15", **env_overrides})


def oracle(name: str, env_overrides: Mapping[str, Any], mu: float, grid_size: int = 16) -> LookaheadOracle:
    """The per-interval lookahead oracle (``adaptstep.threebody.oracle``)."""
    return LookaheadOracle(name, mu, grid_size, env_overrides)
