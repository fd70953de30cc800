"""Each budget agent against the strongest rule, as issue 38's target reads it.

At a budget B the agent beats the strongest rule S(B) when its mean reward's 95% CI lies above S(B)'s, and matches
it with less compute when its mean reward reaches the lower CI bound of S at some budget B' whose mean NFE is at
least 1/0.6 times the agent's. A budget below the largest is saturated when S(B)'s CI reaches that of S at the
largest budget (the largest budget itself cannot be judged). The
differences are paired on the held-out seeds (``adaptstep.analysis.paired_difference``).
"""

from __future__ import annotations

import pandas as pd

from adaptstep.analysis import paired_difference

NFE_RATIO = 0.6  # "matches with at most this share of the NFE"


def _paired(rows: pd.DataFrame, agent: str, rule: str, budget: int, column: str) -> str:
    def values(method: str) -> pd.Series:
        chosen = rows[(rows.method == method) & (rows.budget == budget)]
        return chosen.set_index("seed")[column].astype(float)

    first, second = values(agent).align(values(rule), join="inner")
    if column == "wrong_mode" and first.isna().all():
        return "–"
    mean, low, high = paired_difference(first.to_numpy(), second.to_numpy())
    scale = 100.0 if column == "wrong_mode" else 1.0
    return f"{scale * mean:+.3g} [{scale * low:+.3g}, {scale * high:+.3g}]"


def _row(means: pd.DataFrame, method: str, budget: int) -> pd.Series:
    return means[(means.method == method) & (means.budget == budget)].iloc[0]


def versus_strongest(rows: pd.DataFrame, means: pd.DataFrame, strongest: dict[int, str]) -> pd.DataFrame:
    """One line per agent and budget against the strongest rule.

    Args:
        rows: The bench's per-generation rows (``method``, ``budget``, ``seed``, ``reward``, ``heldout_reward``,
            ``wrong_mode``, ``cost``) of the main comparison.
        means: Their ``generation_means``.
        strongest: {budget: the strongest rule's name}.

    Returns:
        Per agent and budget: the rewards with CIs, the paired differences (reward, held-out, wrong-mode
        percentage points), the NFE and the verdict.
    """
    largest = max(strongest)
    ceiling = _row(means, strongest[largest], largest)
    lines = []
    for _, agent in means[means.method.str.startswith("agent")].iterrows():
        budget = int(agent.budget)
        if budget not in strongest:
            continue
        rule = _row(means, strongest[budget], budget)
        saturated = budget < largest and rule.reward_high >= ceiling.reward_low
        cheaper = [b for b in strongest if _row(means, strongest[b], b).nfe * NFE_RATIO >= agent.nfe
                   and agent.reward >= _row(means, strongest[b], b).reward_low]
        if agent.reward_low > rule.reward_high:
            verdict = "beats (CIs apart)"
        elif cheaper:
            best = max(cheaper)
            ratio = agent.nfe / _row(means, strongest[best], best).nfe
            verdict = f"matches {strongest[best]} at {best} NFE with {ratio:.2f}× the NFE"
        elif agent.reward_high < rule.reward_low:
            verdict = "worse (CIs apart)"
        else:
            verdict = "tie (CIs overlap)"
        if saturated:
            verdict += "; saturated"
        lines.append({
            "agent": agent.method, "budget": budget, "strongest": rule.method,
            "agent reward [CI]": f"{agent.reward:.4g} [{agent.reward_low:.4g}, {agent.reward_high:.4g}]",
            "strongest reward [CI]": f"{rule.reward:.4g} [{rule.reward_low:.4g}, {rule.reward_high:.4g}]",
            "Δ reward": _paired(rows, agent.method, rule.method, budget, "reward"),
            "Δ held-out": _paired(rows, agent.method, rule.method, budget, "heldout_reward"),
            "Δ wrong mode (pp)": _paired(rows, agent.method, rule.method, budget, "wrong_mode"),
            "NFE agent / strongest": f"{agent.nfe:.4g} / {rule.nfe:.4g}",
            "verdict": verdict,
        })
    return pd.DataFrame(lines)
