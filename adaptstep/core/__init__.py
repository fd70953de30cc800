"""The contract every family plugs into: envs, processes, the family registry, settings and the bench base.

``core`` imports no family; families import ``core`` and the torch toolkit ``adaptstep.nn``, never each other.
"""

from adaptstep.core.contract import AdaptiveEnv, Metric
from adaptstep.core.process import Process
from adaptstep.core.registry import Family, families, family_of, register_family

__all__ = ["AdaptiveEnv", "Family", "Metric", "Process", "families", "family_of", "register_family"]
