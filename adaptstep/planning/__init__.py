"""Offline-RL planning with diffusion planners whose denoising budget is chosen at every replanning point.

The package holds D4RL-format and Minari datasets, D4RL's normalized scores, maze2d and hopper data, the Diffuser
and Trajectory Diffuser planners, and a planner acting in its task with replanning.
"""

from adaptstep.core.lazy import lazy_exports

EXPORTS = {
    "PlanExecution": "adaptstep.planning.control",
    "OfflineDataset": "adaptstep.planning.datasets",
    "read_d4rl": "adaptstep.planning.datasets",
    "read_minari": "adaptstep.planning.datasets",
    "write_d4rl": "adaptstep.planning.datasets",
    "write_minari": "adaptstep.planning.datasets",
    "Diffuser": "adaptstep.planning.diffuser",
    "DiffuserConfig": "adaptstep.planning.diffuser",
    "Plan": "adaptstep.planning.diffuser",
    "plan": "adaptstep.planning.diffuser",
    "train_diffuser": "adaptstep.planning.diffuser",
    "DiffuserPlanner": "adaptstep.planning.planners",
    "Planner": "adaptstep.planning.planners",
    "load_planner": "adaptstep.planning.planners",
    "save_planner": "adaptstep.planning.planners",
    "REFERENCE_SCORES": "adaptstep.planning.scores",
    "normalized_score": "adaptstep.planning.scores",
    "reference_scores": "adaptstep.planning.scores",
    "TrajectoryDiffuser": "adaptstep.planning.trajectory_diffuser",
    "train_trajectory_diffuser": "adaptstep.planning.trajectory_diffuser",
    "ValueGuide": "adaptstep.planning.value_guidance",
    "train_value": "adaptstep.planning.value_guidance",
}
__all__ = sorted(EXPORTS)
__getattr__ = lazy_exports(__name__, EXPORTS)
