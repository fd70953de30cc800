"""Offline-RL planning: D4RL-format and Minari datasets and D4RL's normalized scores (planners come next)."""

from adaptstep.planning.datasets import OfflineDataset, read_d4rl, read_minari, write_d4rl, write_minari
from adaptstep.planning.scores import REFERENCE_SCORES, normalized_score, reference_scores

__all__ = ["OfflineDataset", "REFERENCE_SCORES", "normalized_score", "read_d4rl", "read_minari", "reference_scores",
           "write_d4rl", "write_minari"]
