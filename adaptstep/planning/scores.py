"""D4RL's normalized score: 100·(return − REF_MIN)/(REF_MAX − REF_MIN) with the official reference returns.

REF_MIN / REF_MAX are those of D4RL (Fu et al. 2020): ``d4rl/infos.py`` for the MuJoCo tasks (v1 and v2 datasets
reuse the v0 values) and the maze2d env registrations of ``d4rl/pointmaze/__init__.py``, which differ between
versions: maze2d **v0** envs run 150 / 250 / 600 steps and have their own references, **v1** envs run
300 / 600 / 800 steps. A maze2d name without a version means v1 (the episode lengths adaptstep evaluates with).
D4RL's ``get_normalized_score`` returns the fraction; papers (and this function) report it ×100. Scores of datasets
and envs that adaptstep makes itself (Gymnasium v5 dynamics, Gymnasium-Robotics PointMaze) are not comparable to
published D4RL numbers.
"""

from __future__ import annotations

import re

import numpy as np

LOCOMOTION_SCORES: dict[str, tuple[float, float]] = {
    "hopper": (-20.272305, 3234.3),
    "walker2d": (1.629008, 4592.3),
    "halfcheetah": (-280.178953, 12135.0),
    "antmaze": (0.0, 1.0),
}
MAZE2D_SCORES: dict[str, tuple[float, float]] = {
    "maze2d-open-v0": (0.01, 20.66),
    "maze2d-umaze-v0": (0.94, 62.6),
    "maze2d-medium-v0": (5.77, 85.14),
    "maze2d-large-v0": (4.83, 191.99),
    "maze2d-umaze-v1": (23.85, 161.86),
    "maze2d-medium-v1": (13.13, 277.39),
    "maze2d-large-v1": (6.7, 273.99),
    "maze2d-open-dense-v0": (11.17817, 27.166538620695782),
    "maze2d-umaze-dense-v0": (23.249793, 81.78995240126592),
    "maze2d-medium-dense-v0": (19.477620, 96.03474232952358),
    "maze2d-large-dense-v0": (27.388310, 215.09965671563742),
    "maze2d-umaze-dense-v1": (68.537689, 193.66285642381482),
    "maze2d-medium-dense-v1": (44.264742, 297.4552547777125),
    "maze2d-large-dense-v1": (30.569041, 303.4857382709002),
}
REFERENCE_SCORES: dict[str, tuple[float, float]] = {**LOCOMOTION_SCORES, **MAZE2D_SCORES}


def reference_scores(task: str) -> tuple[float, float]:
    """(REF_MIN, REF_MAX) of a D4RL task name.

    Args:
        task: Such as ``hopper-medium-v2``, ``maze2d-umaze-v0``, ``maze2d-large-dense-v1``, ``maze2d-umaze``
            (= v1) or ``antmaze-large-diverse-v2``. Locomotion and antmaze names ignore the version and the
            dataset's quality level; maze2d names keep their version.

    Raises:
        ValueError: If ``task`` names no task of ``REFERENCE_SCORES``.
    """
    name = task.strip().lower()
    if name.startswith("maze2d-"):
        key = name if re.search(r"-v\d+$", name) else f"{name}-v1"
    elif name.startswith("antmaze"):
        key = "antmaze"
    else:
        key = re.sub(r"-v\d+$", "", name).split("-")[0]
    if key not in REFERENCE_SCORES:
        raise ValueError(f"task must name one of {sorted(REFERENCE_SCORES)} (e.g. 'hopper-medium-v2'), got {task!r}")
    return REFERENCE_SCORES[key]


def normalized_score(task: str, score: float | np.ndarray) -> float | np.ndarray:
    """100·(score − REF_MIN)/(REF_MAX − REF_MIN) for ``task`` (undiscounted episode return ``score``)."""
    low, high = reference_scores(task)
    result = 100.0 * (np.asarray(score, dtype=float) - low) / (high - low)
    return float(result) if np.ndim(result) == 0 else result
