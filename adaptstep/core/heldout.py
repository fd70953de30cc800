"""Tuning seeds and held-out seeds: the strongest baseline is chosen on the first and reported on the second.

Every family's strongest-baseline selection goes through ``check_disjoint`` before it scores a candidate, and picks
its winner with ``best_of`` (the best score, ties broken by name, so the choice does not depend on order).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def check_disjoint(tuning_seeds: Iterable[int], heldout_seeds: Iterable[int]) -> None:
    """Raise if the tuning and held-out seeds overlap.

    Raises:
        ValueError: Naming the first shared seeds.
    """
    overlap = sorted(set(tuning_seeds) & set(heldout_seeds))
    if overlap:
        raise ValueError(f"tuning seeds must be disjoint from the held-out seeds, both hold {overlap[:5]}…")


def best_of(scores: Mapping[str, float], higher_is_better: bool) -> str:
    """The name of the best score (the highest, or the lowest when ``higher_is_better`` is False); ties by name.

    Raises:
        ValueError: If ``scores`` is empty.
    """
    if not scores:
        raise ValueError("scores must hold at least one candidate")
    sign = -1.0 if higher_is_better else 1.0
    return min(scores, key=lambda name: (sign * scores[name], name))
