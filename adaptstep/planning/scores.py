"""D4RL's normalized score: 100·(return − REF_MIN)/(REF_MAX − REF_MIN) with the official reference returns.

REF_MIN / REF_MAX are those of ``d4rl/infos.py`` (Fu et al. 2020; v1 and v2 datasets reuse the v0 values):
random- and expert-policy returns for the MuJoCo tasks, and the maze tasks' own references. D4RL's
``get_normalized_score`` returns the fraction; papers (and this function) report it ×100. Scores of datasets and
envs that adaptstep makes itself (Gymnasium v5 dynamics) are not comparable to published D4RL numbers.
"""

from __future__ import annotations

import re

import numpy as np

REFERENCE_SCORES: dict[str, tuple[float, float]] = {
    "hopper": (-20.272305, 3234.3),
    "walker2d": (1.629008, 4592.3),
    "halfcheetah": (-280.178953, 12135.0),
    "maze2d-umaze": (23.85, 161.86),
    "maze2d-medium": (13.13, 277.39),
    "maze2d-large": (6.7, 273.99),
    "maze2d-umaze-dense": (68.537689, 193.66),
    "maze2d-medium-dense": (44.264742, 297.46),
    "maze2d-large-dense": (30.569041, 303.49),
    "antmaze": (0.0, 1.0),
}


def reference_scores(task: str) -> tuple[float, float]:
    """(REF_MIN, REF_MAX) of a D4RL task name.

    Args:
        task: Such as ``hopper-medium-v2``, ``maze2d-umaze-v1`` or ``antmaze-large-diverse-v2`` (the version
            suffix and the dataset's quality level are ignored).

    Raises:
        ValueError: If ``task`` names no task of ``REFERENCE_SCORES``.
    """
    name = re.sub(r"-v\d+$", "", task.strip().lower())
    if name.startswith("maze2d-"):
        size = name.split("-")[1] if name.count("-") >= 1 else ""
        key = f"maze2d-{size}" + ("-dense" if name.endswith("-dense") else "")
    elif name.startswith("antmaze"):
        key = "antmaze"
    else:
        key = name.split("-")[0]
    if key not in REFERENCE_SCORES:
        raise ValueError(f"task must name one of {sorted(REFERENCE_SCORES)} (e.g. 'hopper-medium-v2'), got {task!r}")
    return REFERENCE_SCORES[key]


def normalized_score(task: str, score: float | np.ndarray) -> float | np.ndarray:
    """100·(score − REF_MIN)/(REF_MAX − REF_MIN) for ``task`` (undiscounted episode return ``score``)."""
    low, high = reference_scores(task)
    result = 100.0 * (np.asarray(score, dtype=float) - low) / (high - low)
    return float(result) if np.ndim(result) == 0 else result
