"""Reference scores equal D4RL's, copied as facts from its sources.

Locomotion: ``d4rl/infos.py`` REF_MIN_SCORE / REF_MAX_SCORE (Farama-Foundation/D4RL). maze2d: the ``ref_min_score``
/ ``ref_max_score`` of each env registration in ``d4rl/pointmaze/__init__.py`` (the v1 and dense-v1 values are
also those of ``infos.py``).
"""

import pytest

from adaptstep.planning.scores import normalized_score, reference_scores

D4RL_REFERENCES = {
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
    "hopper-medium-v0": (-20.272305, 3234.3),
    "hopper-medium-v2": (-20.272305, 3234.3),
    "walker2d-medium-replay-v2": (1.629008, 4592.3),
    "halfcheetah-expert-v2": (-280.178953, 12135.0),
    "antmaze-umaze-v0": (0.0, 1.0),
    "antmaze-large-diverse-v2": (0.0, 1.0),
}


@pytest.mark.parametrize("task", sorted(D4RL_REFERENCES))
def test_reference_scores_equal_d4rl(task):
    assert reference_scores(task) == D4RL_REFERENCES[task]


def test_maze2d_versions_differ_and_unversioned_means_v1():
    assert reference_scores("maze2d-umaze-v0") != reference_scores("maze2d-umaze-v1")
    assert reference_scores("maze2d-medium") == D4RL_REFERENCES["maze2d-medium-v1"]
    assert normalized_score("maze2d-umaze-v0", 62.6) == pytest.approx(100.0)


def test_unknown_maze_version_is_named():
    with pytest.raises(ValueError, match="task must name one of"):
        reference_scores("maze2d-umaze-v7")
