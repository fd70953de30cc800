"""Offline-RL planning: D4RL-format and Minari datasets, D4RL's normalized scores, maze2d and hopper data, the
Diffuser and Trajectory Diffuser planners, and a planner acting in its task with replanning."""

from adaptstep.planning.control import PlanExecution
from adaptstep.planning.datasets import OfflineDataset, read_d4rl, read_minari, write_d4rl, write_minari
from adaptstep.planning.diffuser import Diffuser, DiffuserConfig, Plan, plan, train_diffuser
from adaptstep.planning.planners import DiffuserPlanner, Planner, load_planner, save_planner
from adaptstep.planning.scores import REFERENCE_SCORES, normalized_score, reference_scores
from adaptstep.planning.trajectory_diffuser import TrajectoryDiffuser, train_trajectory_diffuser
from adaptstep.planning.value_guidance import ValueGuide, train_value

__all__ = ["Diffuser", "DiffuserConfig", "DiffuserPlanner", "OfflineDataset", "Plan", "PlanExecution", "Planner",
           "REFERENCE_SCORES", "TrajectoryDiffuser", "ValueGuide", "load_planner", "normalized_score", "plan",
           "read_d4rl", "read_minari", "reference_scores", "save_planner", "train_diffuser",
           "train_trajectory_diffuser", "train_value", "write_d4rl", "write_minari"]
