"""The agent-against-strongest verdicts of the budget bench."""

import numpy as np
import pandas as pd

from adaptstep.flow.bench import generation_means
from adaptstep.flow.versus import versus_strongest


def _rows(method, budget, rewards, nfe):
    return pd.DataFrame({"method": method, "budget": budget, "sde": "linear-sde", "seed": np.arange(len(rewards)),
                         "reward": rewards, "heldout_reward": rewards, "wrong_mode": 0.0, "cost": nfe})


def test_verdicts_beat_match_and_saturation():
    rng = np.random.default_rng(0)
    noise = rng.normal(scale=0.01, size=200)
    rows = pd.concat([_rows("S", 100, -2.0 + noise, 100), _rows("S", 200, -1.5 + noise, 200),
                      _rows("S", 1000, -1.0 + noise, 1000),
                      _rows("agent", 100, -1.0 + noise, 100),      # above S(100): beats
                      _rows("agent", 200, -1.5 + noise, 100),      # S(200)'s reward with half its NFE: matches
                      _rows("agent", 1000, -1.0 + noise, 1000)], ignore_index=True)
    table = versus_strongest(rows, generation_means(rows), {100: "S", 200: "S", 1000: "S"})
    verdicts = dict(zip(table.budget, table.verdict))
    assert verdicts[100] == "beats (CIs apart)"
    assert verdicts[200].startswith("matches S at 200 NFE with 0.50×")
    assert verdicts[1000] == "tie (CIs overlap)"  # the largest budget is never called saturated
    assert table.loc[table.budget == 100, "Δ reward"].iloc[0].startswith("+1")
