"""Where a maze2d policy's score comes from under D4RL's protocol: reaching the goal, and staying there.

Per episode: the start cell (D4RL's frame), the score (steps within ``GOAL_RADIUS`` of the goal), the first step
that ends within it (None if none) and the share of the steps from then on that end within it. A policy that
arrives early and stays scores high; one that passes through the goal, or never arrives, does not.

``python -m adaptstep.planning.goal_visits PLANNER TASK --episodes N`` prints the episodes' summary (a planner
checkpoint or ``zoo:NAME``, run with budget 1 and a new plan at every step, as the bench runs reactive policies;
``--replan-every 8 --option samples=4`` runs a diffusion planner as the bench does, ``--budget 20 --replan-every 0
--option follow=states`` a Diffuser planning once as its maze2d script).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import numpy as np
import pandas as pd

from adaptstep.core.settings import parse_settings, require_int
from adaptstep.planning.d4rl_eval import make_d4rl_eval_env
from adaptstep.planning.d4rl_maze import D4RL_MAZES, to_d4rl
from adaptstep.planning.planners import Planner, load_planner


def goal_visits(planner: Planner, task: str, seeds: Sequence[int], replan_every: int = 1,
                budget: int = 1) -> pd.DataFrame:
    """One row per seed: ``start_row``, ``start_col``, ``score``, ``first_step`` (NaN: never) and ``stay_share``.

    The planner plans with ``budget`` every ``replan_every`` control steps (0: once, at the start) and acts on its
    plan in between (past its horizon, at its last step).

    Raises:
        ValueError: If ``task`` is not a D4RL maze (a key of ``D4RL_MAZES``), ``replan_every`` is not an int >= 0
            or ``budget`` not an int >= 1.
    """
    require_int("replan_every", replan_every, minimum=0)
    require_int("budget", budget)
    if task not in D4RL_MAZES:
        raise ValueError(f"task must be one of {sorted(D4RL_MAZES)}, got {task!r}")
    env, rows = make_d4rl_eval_env(task), []
    try:
        for seed in seeds:
            observation, _ = env.reset(seed=seed)
            start, rewards, done = to_d4rl(env.maze, observation["observation"][:2]), [], False
            while not done:
                state, step = np.asarray(observation["observation"], np.float64), len(rewards)
                if step == 0 or (replan_every and step % replan_every == 0):
                    plan_step = step
                    plan = planner.plan(state, np.asarray(observation["desired_goal"], np.float64), budget,
                                        seed + step)
                index = min(step - plan_step, planner.horizon - 1)
                observation, reward, terminated, truncated, _ = env.step(
                    np.asarray(planner.act(plan, state, index), np.float32))
                rewards.append(reward)
                done = terminated or truncated
            hits = np.asarray(rewards) > 0
            first = int(np.argmax(hits)) if hits.any() else None
            rows.append({"seed": seed, "start_row": int(round(start[0])), "start_col": int(round(start[1])),
                         "score": float(hits.sum()), "first_step": np.nan if first is None else first,
                         "stay_share": float(hits[first:].mean()) if first is not None else 0.0})
    finally:
        env.close()
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> None:
    """Print the share of episodes that reach the goal, the mean first step and the mean stay share."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("planner", help="a planner checkpoint or zoo:NAME")
    parser.add_argument("task", choices=sorted(D4RL_MAZES))
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--seed", type=int, default=10_000)
    parser.add_argument("--replan-every", type=int, default=1, help="control steps between plans (0: plan once)")
    parser.add_argument("--budget", type=int, default=1, help="the denoising budget of every plan")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a planner setting, e.g. samples=4 (repeatable)")
    args = parser.parse_args(argv)
    table = goal_visits(load_planner(args.planner, device="cpu", **parse_settings(args.option, "--option")), args.task,
                        range(args.seed, args.seed + args.episodes), args.replan_every, args.budget)
    reached = table[table["first_step"].notna()]
    print(f"{args.planner} on {args.task}, {len(table)} episodes: {len(reached) / len(table):.0%} reach the goal, "
          f"first step {reached['first_step'].mean():.0f}, later steps within it {reached['stay_share'].mean():.0%}")


if __name__ == "__main__":
    main()
