"""Controllers (trained SB3 models and hand-made baselines) and the SB3 training glue."""

from adaptstep.agents.baselines import BASELINES, FixedParameter, RandomAction
from adaptstep.agents.controllers import Controller, ModelController, parse_controller

__all__ = [
    "BASELINES",
    "Controller",
    "FixedParameter",
    "ModelController",
    "RandomAction",
    "parse_controller",
]
