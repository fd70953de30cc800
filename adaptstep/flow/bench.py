"""Budget benchmark: verifier reward and held-out reward against the NFE budget for every search method.

1. For each budget in ``--budgets`` and ``--episodes`` generation seeds, every method of
   ``adaptstep.flow.methods`` (best-of-N, Search over Paths, SMC/FK, SVDD, the linearly decreasing schedule,
   RBF with 2 chains as in Kim et al., and RBF with 1 chain, the learned agent's setting) runs with the
   ``--sde`` sampler, off the env (``method_rows``: batched over generations by ``run_method``, one row per
   generation with the harness's columns); the trained agents (``--agent BUDGET=PATH``) run on
   ``adaptstep/BudgetForcing-v0`` through the shared harness on the same seeds (agents trained with
   ``mode="stop"`` appear as ``agent (stop)``).
2. The ODE / linear-SDE / VP-SDE ablation of the particle methods at ``--ablation-budgets``.
3. Tables of mean reward and held-out reward with 95% confidence intervals (1.96 standard errors over
   generations) and the mean NFE, a plot of both rewards against NFE, and checks of the paper's orderings.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from adaptstep.agents.controllers import agent_provenance, trained_agent_kwargs  # noqa: E402
from adaptstep.core.bench import Benchmark, off_env_row  # noqa: E402
from adaptstep.core.report import markdown_table  # noqa: E402
from adaptstep.evaluation import evaluate  # noqa: E402
from adaptstep.flow.methods import run_method  # noqa: E402
from adaptstep.flow.sampler import MODES, FlowSampler  # noqa: E402
from adaptstep.flow.tasks import FLOW_TASKS, Task, make_task  # noqa: E402
from adaptstep.io import atomic_path  # noqa: E402

ENV_ID = "adaptstep/BudgetForcing-v0"
METHODS = {"BoN": ("bon", {}), "SoP": ("sop", {}), "SMC": ("smc", {}), "SVDD": ("svdd", {}),
           "linear": ("linear", {}), "RBF": ("rbf", {}), "RBF (1 chain)": ("rbf", {"chains": 1})}
PARTICLE_METHODS = ("BoN", "SoP", "SMC", "SVDD", "RBF")


class BudgetBenchmark(Benchmark):
    """Budget forcing: verifier and held-out reward against the NFE budget for every search method and the agent."""

    name = "budget"
    default_episodes = 200  # generation seeds per method and budget
    default_seed = 20_000
    packages = ("numpy", "torch", "stable-baselines3")

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """The task, the budgets, the sampler, the ablation and the agents."""
        parser.add_argument("--task", default="gmm-2d-compositional", choices=FLOW_TASKS)
        parser.add_argument("--budgets", type=int, nargs="+", default=[50, 100, 300, 500, 1000])
        parser.add_argument("--sde", default="linear-sde", choices=MODES, help="sampler of the main comparison")
        parser.add_argument("--steps", type=int, default=10, help="denoising steps per generation")
        parser.add_argument("--ablation-budgets", type=int, nargs="*", default=[300],
                            help="budgets of the ODE / linear-SDE / VP-SDE ablation (none: skip)")
        parser.add_argument("--agent", action="append", default=[], metavar="BUDGET=PATH",
                            help="a model.zip trained at that budget (repeatable)")

    def section(self, args: argparse.Namespace) -> str:
        """``budget-<task>`` unless ``--section`` names it."""
        return args.section or f"budget-{args.task}"

    def heading(self, args: argparse.Namespace) -> str:
        """The section's heading."""
        return f"## Budget forcing: {args.task}"

    def measure(self, args: argparse.Namespace) -> pd.DataFrame:
        """One row per generation of every method at every budget and of every agent.

        Returns:
            The rows, with ``sde`` (the sampler) and ``ablation`` (True for the ablation's rows) columns.
        """
        torch.set_num_threads(1)
        agents = parse_agents(args.agent)
        task = make_task(args.task, device="cpu")
        seeds = list(range(args.seed, args.seed + args.episodes))
        main = [method_rows(task, args.sde, args.steps, args.budgets, seeds, list(METHODS)),
                *(agent_rows(path, budget, args) for budget, path in agents)]
        ablation = [method_rows(task, mode, args.steps, args.ablation_budgets, seeds, PARTICLE_METHODS)
                    for mode in MODES]
        frames = [*(frame.assign(ablation=False) for frame in main),
                  *(frame.assign(ablation=True) for frame in ablation)]
        return pd.concat([frame for frame in frames if len(frame)], ignore_index=True)  # no --ablation-budgets: none

    def render(self, table: pd.DataFrame, args: argparse.Namespace) -> str:
        """The reward table, the agents' provenance, the NFE table, the ablation, the orderings and the plot."""
        main, ablation = generation_means(table[~table["ablation"]]), generation_means(table[table["ablation"]])
        plot_path, plot_link = self.figure(args)
        plot(main, plot_path, f"{args.task}, {args.sde}, {args.steps} steps, {args.episodes} generations")
        trained = [agent_provenance(path) for path in dict.fromkeys(path for _, path in parse_agents(args.agent))]
        body = [
            f"Mean verifier reward ± 95% CI / mean held-out reward ± 95% CI over {args.episodes} generations "
            f"(seeds {args.seed}…), {args.sde}, {args.steps} steps; RBF, SVDD and linear use 2 chains unless noted; "
            "the agent (one chain) runs on the env through the shared harness on the same seeds.",
            "", markdown_table(_wide(main)), "",
            *(["Agents (evaluated at every budget they are listed for; training episodes draw their seeds at random "
               "from [0, 2³¹)):", "", *trained, ""] if trained else []),
            "Mean NFE per generation (never above the budget):", "", markdown_table(nfe_table(main), "{:.4g}"), "",
        ]
        if len(ablation):
            body += ["Sampler ablation (mean reward ± 95% CI / held-out):", "",
                     markdown_table(_wide(ablation.assign(method=ablation.method + " " + ablation.sde))), ""]
        body += ["Orderings of Kim et al. 2025 on this task:", "", *orderings(main, ablation), "",
                 f"![reward vs NFE]({plot_link})"]
        return "\n".join(body)


def parse_agents(items: list[str]) -> list[tuple[int, str]]:
    """``--agent BUDGET=PATH`` items -> [(BUDGET, PATH)], in order.

    Raises:
        SystemExit: If an item is not ``BUDGET=PATH``.
    """
    agents = []
    for item in items:
        budget, _, path = item.partition("=")
        if not budget.isdigit() or not path:
            raise SystemExit(f"--agent must look like BUDGET=PATH (e.g. 100=runs/budget/model.zip), got {item!r}")
        agents.append((int(budget), path))
    return agents


def method_rows(task: Task, sde: str, steps: int, budgets: list[int], seeds: list[int],
                names: list[str] | tuple[str, ...]) -> pd.DataFrame:
    """Off-env measurement of generation methods at every budget.

    Args:
        task: The task.
        sde: The sampler's mode.
        steps: The sampler's transitions.
        budgets: The NFE budgets.
        seeds: One generation per seed.
        names: Keys of ``METHODS``.

    Returns:
        One row per method, budget and generation seed with the harness's columns (``reward``,
        ``heldout_reward``, ``cost`` = its NFE) plus ``method``, ``budget`` and ``sde``.
    """
    sampler = FlowSampler(task.flow, sde, steps=steps)
    rows = []
    for budget in budgets:
        for name in names:
            method, options = METHODS[name]
            result = run_method(method, sampler, task.verifier, budget, seeds, **options)
            heldout = task.heldout(result.x0).cpu().numpy()
            rows += [off_env_row(name, seed, float(nfe), reward=float(reward), heldout_reward=float(held),
                                 method=name, budget=budget, sde=sde)
                     for seed, reward, held, nfe in zip(seeds, result.reward, heldout, result.nfe)]
            print(f"{sde} {budget:5d} {name:14s} reward {result.reward.mean():.4g}", file=sys.stderr)
    return pd.DataFrame(rows)


def agent_rows(path: str, budget: int, args: argparse.Namespace) -> pd.DataFrame:
    """The harness rows of a trained agent on the env at ``budget``.

    Its action encoding and acceptance rule come from its run.yaml. The rows' ``method`` is ``agent``, or
    ``agent (<mode>)`` for a mode other than quota.

    Args:
        path: The ``model.zip``.
        budget: The env's NFE budget.
        args: The bench's options (task, sde, steps, episodes, seed).
    """
    kwargs = {"task": args.task, "budget": budget, "sde": args.sde, "steps": args.steps}
    table = evaluate(ENV_ID, [path], episodes=args.episodes, seed=args.seed, env_kwargs=kwargs, progress=False)
    mode = trained_agent_kwargs(path).get("mode", "quota")
    return table.assign(method="agent" if mode == "quota" else f"agent ({mode})", budget=budget, sde=args.sde)


def generation_means(table: pd.DataFrame) -> pd.DataFrame:
    """Mean rewards per method, budget and sampler (in order of appearance).

    Returns:
        Per group: mean reward and held-out reward with their 95% CIs, mean NFE and the number of generations.
    """
    def ci(values: np.ndarray) -> float:
        return float(1.96 * values.std(ddof=1) / np.sqrt(len(values))) if len(values) > 1 else float("nan")

    def describe(group: pd.DataFrame) -> pd.Series:
        reward, heldout = group["reward"].to_numpy(dtype=float), group["heldout_reward"].to_numpy(dtype=float)
        return pd.Series({"reward": reward.mean(), "reward_ci": ci(reward), "heldout": heldout.mean(),
                          "heldout_ci": ci(heldout), "nfe": group["cost"].to_numpy(dtype=float).mean(),
                          "generations": len(group)})

    groups = table.groupby(["method", "budget", "sde"], sort=False)
    return groups.apply(describe, include_groups=False).reset_index()


def orderings(main: pd.DataFrame, ablation: pd.DataFrame) -> list[str]:
    """The paper's orderings, checked on the measured means (a strict '>' needs non-overlapping 95% CIs).

    Args:
        main: ``generation_means`` of the main rows.
        ablation: ``generation_means`` of the sampler ablation.

    Returns:
        One markdown list item per ordering.
    """
    lines = []
    for budget, group in ablation.groupby("budget"):
        for method, rows in group.groupby("method", sort=False):
            by = rows.set_index("sde")
            vp, linear, ode = (by.loc[mode] for mode in ("vp-sde", "linear-sde", "ode"))
            holds = vp.reward - vp.reward_ci > linear.reward + linear.reward_ci > ode.reward + ode.reward_ci
            lines.append(f"- {method} at {budget} NFE: VP-SDE {vp.reward:.4g} / linear SDE {linear.reward:.4g} / "
                         f"ODE {ode.reward:.4g}: VP > linear > ODE {'holds' if holds else 'does not hold'}.")
    large = sorted(main.budget.unique())[-2:]
    for budget in large:
        by = main[main.budget == budget].set_index("method")
        rbf, svdd, bon = by.loc["RBF"], by.loc["SVDD"], by.loc["BoN"]
        first = rbf.reward + rbf.reward_ci >= svdd.reward - svdd.reward_ci
        second = svdd.reward - svdd.reward_ci > bon.reward + bon.reward_ci
        lines.append(f"- {budget} NFE: RBF {rbf.reward:.4g} ≥ SVDD {svdd.reward:.4g} (within the CIs): "
                     f"{'holds' if first else 'no'}; "
                     f"SVDD > BoN {bon.reward:.4g}: {'holds' if second else 'no'}.")
    return lines


def plot(main: pd.DataFrame, path: Path, title: str) -> None:
    """Plot mean reward and held-out reward (95% CI bars) against mean NFE per method, the agents in bold.

    Args:
        main: ``generation_means`` of the main rows.
        path: The PNG to write (atomically).
        title: The figure's title.
    """
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.5), dpi=120)
    for method, rows in main.groupby("method", sort=False):
        rows = rows.sort_values("nfe")
        style = {"lw": 2.5, "color": "black", "marker": "*" if method == "agent" else "P", "ms": 12} \
            if method.startswith("agent") else {"marker": "o"}
        for axis, column in zip(axes, ("reward", "heldout")):
            axis.errorbar(rows.nfe, rows[column], yerr=rows[f"{column}_ci"], capsize=2, label=method, **style)
    for axis, column, label in zip(axes, ("reward", "heldout"), ("verifier reward", "held-out reward")):
        axis.set(xscale="log", xlabel="NFE (mean per generation)", ylabel=f"mean {label} (95% CI)")
        if (main[column] < -1).any():  # log-densities: symmetric log, linear within ±1
            axis.set_yscale("symlog", linthresh=1.0)
        axis.grid(True, which="both", alpha=0.3)
    axes[1].legend(fontsize=8, loc="center left", bbox_to_anchor=(1.0, 0.5))
    figure.suptitle(title)
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, format="png")
    plt.close(figure)


def nfe_table(main: pd.DataFrame) -> pd.DataFrame:
    """Mean NFE per method (rows) and budget (columns ``<budget> NFE``); ``–`` where a method did not run."""
    nfe = main.pivot_table(index="method", columns="budget", values="nfe", sort=False).round(1)
    nfe = nfe.astype(object).where(nfe.notna(), "–").reset_index()
    nfe.columns = ["method", *[f"{b} NFE" for b in nfe.columns[1:]]]
    return nfe


def _wide(frame: pd.DataFrame) -> pd.DataFrame:
    cells = frame.assign(cell=[f"{r:.4g} ± {c:.2g} / {h:.4g} ± {hc:.2g}" for r, c, h, hc in
                               frame[["reward", "reward_ci", "heldout", "heldout_ci"]].itertuples(index=False)])
    wide = cells.pivot_table(index="method", columns="budget", values="cell", aggfunc="first", sort=False)
    wide = wide.astype(object).where(wide.notna(), "–")
    wide.columns = [f"{budget} NFE" for budget in wide.columns]
    return wide.reset_index()
