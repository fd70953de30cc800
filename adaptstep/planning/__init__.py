"""Offline-RL planning: D4RL-format and Minari datasets, D4RL's normalized scores, maze2d data and Diffuser."""

from adaptstep.planning.datasets import OfflineDataset, read_d4rl, read_minari, write_d4rl, write_minari
from adaptstep.planning.diffuser import Diffuser, DiffuserConfig, Plan, plan, train_diffuser
from adaptstep.planning.scores import REFERENCE_SCORES, normalized_score, reference_scores

__all__ = ["Diffuser", "DiffuserConfig", "OfflineDataset", "Plan", "REFERENCE_SCORES", "normalized_score", "plan",
           "read_d4rl", "read_minari", "reference_scores", "train_diffuser", "write_d4rl", "write_minari"]
