"""Budget benchmark: every search rule, the strongest rule per budget and the agents, reward against NFE.

1. The strongest rule per budget (``adaptstep.flow.strongest``): every rule the project has (BoN, SoP, SMC with
   each potential, SVDD, linear, RBF with and without early acceptance on 1, 2 and 4 chains) on
   ``--tuning-episodes`` tuning seeds from ``--tuning-seed``; the winner has the highest mean verifier reward.
2. On the held-out seeds (``--episodes`` from ``--seed``, disjoint from the tuning seeds, checked): the paper's
   rules (``METHODS``) and each budget's winner run off the env (``method_rows``), the trained agents
   (``--agent BUDGET=PATH``) on ``adaptstep/BudgetForcing-v0`` through the shared harness on the same seeds.
3. The ODE / linear-SDE / VP-SDE ablation of the particle methods at ``--ablation-budgets``.
4. Tables of mean verifier reward and held-out reward with percentile-bootstrap 95% CIs over the generations, the
   share of generations ending in a wrong mode (mixture tasks), mean NFE, each agent against the strongest rule
   (paired bootstrap differences on the same seeds), a plot and the paper's orderings.
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

from adaptstep.agents.controllers import agent_provenance, run_record, trained_agent_kwargs  # noqa: E402
from adaptstep.analysis import bootstrap_mean  # noqa: E402
from adaptstep.core.bench import Benchmark, off_env_row  # noqa: E402
from adaptstep.core.report import markdown_table  # noqa: E402
from adaptstep.core.settings import require_bool  # noqa: E402
from adaptstep.evaluation import evaluate  # noqa: E402
from adaptstep.flow.methods import run_method  # noqa: E402
from adaptstep.flow.sampler import MODES, FlowSampler  # noqa: E402
from adaptstep.flow.strongest import TUNING_SEED, candidates, select_strongest  # noqa: E402
from adaptstep.flow.tasks import FLOW_TASKS, Task, make_task  # noqa: E402
from adaptstep.flow.versus import versus_strongest  # noqa: E402
from adaptstep.io import atomic_path  # noqa: E402

ENV_ID = "adaptstep/BudgetForcing-v0"
METHODS = ("BoN", "SoP", "SMC diff", "SVDD ×2", "linear ×2", "RBF ×2", "RBF ×1")  # Kim et al.'s set, by rule name
PARTICLE_METHODS = ("BoN", "SoP", "SMC diff", "SVDD ×2", "RBF ×2")


class BudgetBenchmark(Benchmark):
    """Budget forcing: verifier and held-out reward against the NFE budget for every search method and the agent."""

    name = "budget"
    default_episodes = 400  # held-out generation seeds per method and budget
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
        parser.add_argument("--tuning-episodes", type=int, default=100,
                            help="tuning generations per candidate rule and budget (choosing the strongest)")
        parser.add_argument("--tuning-seed", type=int, default=TUNING_SEED, help="the first tuning seed")

    def section(self, args: argparse.Namespace) -> str:
        """``budget-<task>`` unless ``--section`` names it."""
        return args.section or f"budget-{args.task}"

    def heading(self, args: argparse.Namespace) -> str:
        """The section's heading."""
        return f"## Budget forcing: {args.task}"

    def measure(self, args: argparse.Namespace) -> pd.DataFrame:
        """One row per held-out generation of every method at every budget and of every agent.

        Returns:
            The rows, with ``sde`` (the sampler) and ``ablation`` (True for the ablation's rows) columns;
            ``attrs["strongest"]`` holds {budget: rule} and ``attrs["tuning"]`` the tuning means.
        """
        torch.set_num_threads(1)
        agents = parse_agents(args.agent)
        task = make_task(args.task, device="cpu")
        seeds = list(range(args.seed, args.seed + args.episodes))
        sampler = FlowSampler(task.flow, args.sde, steps=args.steps)
        strongest, tuning = select_strongest(task, sampler, args.budgets, seeds, args.tuning_episodes,
                                             args.tuning_seed)
        main = [method_rows(task, args.sde, args.steps, [budget], seeds,
                            [name for name in dict.fromkeys([*METHODS, strongest[budget]])
                             if name in candidates(budget, args.steps)])
                for budget in args.budgets]
        main += [agent_rows(path, budget, args) for budget, path in agents]
        ablation = [method_rows(task, mode, args.steps, args.ablation_budgets, seeds, PARTICLE_METHODS)
                    for mode in MODES]
        frames = [*(frame.assign(ablation=False) for frame in main),
                  *(frame.assign(ablation=True) for frame in ablation)]
        table = pd.concat([frame for frame in frames if len(frame)], ignore_index=True)  # no --ablation-budgets: none
        table.attrs.update(strongest=strongest, tuning=tuning)
        return table

    def render(self, table: pd.DataFrame, args: argparse.Namespace) -> str:
        """The strongest rules, the reward table, the wrong-mode shares, the agents against the strongest rule,
        the NFE table, the ablation, the orderings and the plot."""
        strongest = {int(budget): rule for budget, rule in table.attrs["strongest"].items()}
        main_rows = table[~table["ablation"]]
        main, ablation = generation_means(main_rows), generation_means(table[table["ablation"]])
        plot_path, plot_link = self.figure(args)
        plot(main, plot_path, f"{args.task}, {args.sde}, {args.steps} steps, {args.episodes} generations")
        trained = [agent_provenance(path) for path in dict.fromkeys(path for _, path in parse_agents(args.agent))]
        body = [
            f"The strongest rule per budget, chosen among {len(candidates(max(args.budgets), args.steps))} rules "
            f"(BoN, SoP, SMC with the diff/max/rt potentials, SVDD, linear, RBF and RBF without early acceptance on "
            f"1, 2 and 4 chains) by mean verifier reward on {args.tuning_episodes} tuning generations (seeds "
            f"{args.tuning_seed}…), reported on the {args.episodes} held-out generations (seeds {args.seed}…; "
            "disjoint, checked):", "",
            markdown_table(strongest_table(main, table.attrs["tuning"], strongest)), "",
            f"Mean verifier reward [95% bootstrap CI] / mean held-out reward [95% CI] over {args.episodes} held-out "
            f"generations, {args.sde}, {args.steps} steps; ×C is the number of chains; the agents run on the env "
            "through the shared harness on the same seeds.",
            "", markdown_table(_wide(main)), "",
        ]
        if main["wrong_mode"].notna().any():
            body += ["Share of generations ending in a wrong mode (nearest mixture mode of x̂0 not a target mode), %:",
                     "", markdown_table(_wide(main, "wrong_mode")), ""]
        if main["method"].str.startswith("agent").any():
            body += ["Each agent against the strongest rule at the same budget (differences paired on the held-out "
                     "seeds, bootstrap 95% CI); target: a higher reward with non-overlapping CIs, or the strongest "
                     "rule's reward with ≤ 0.6× its NFE, where the strongest rule is below saturation (its CI below "
                     "that of the largest budget's strongest rule):", "",
                     markdown_table(versus_strongest(main_rows, main, strongest)), ""]
        body += [*(["Agents (evaluated at every budget they are listed for; training episodes draw their seeds at "
                    "random from [0, 2³¹)):", "", *trained, ""] if trained else []),
                 "Mean NFE per generation (never above the budget):", "", markdown_table(nfe_table(main), "{:.4g}"), ""]
        if len(ablation):
            body += ["Sampler ablation (mean reward [95% CI] / held-out):", "",
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
        names: Rule names of ``candidates`` (e.g. ``METHODS``).

    Returns:
        One row per method, budget and generation seed with the harness's columns (``reward``,
        ``heldout_reward``, ``wrong_mode``, ``cost`` = its NFE) plus ``method``, ``budget`` and ``sde``.
    """
    sampler = FlowSampler(task.flow, sde, steps=steps)
    rows = []
    for budget in budgets:
        rules = candidates(budget, steps)
        for name in names:
            method, options = rules[name]
            result = run_method(method, sampler, task.verifier, budget, seeds, **options)
            heldout = task.heldout(result.x0).cpu().numpy()
            wrong = task.wrong_modes(result.x0)
            rows += [off_env_row(name, seed, float(nfe), reward=float(reward), heldout_reward=float(held),
                                 wrong_mode=float(miss), method=name, budget=budget, sde=sde)
                     for seed, reward, held, miss, nfe in zip(seeds, result.reward, heldout, wrong, result.nfe)]
            print(f"{sde} {budget:5d} {name:16s} reward {result.reward.mean():.4g}", file=sys.stderr)
    return pd.DataFrame(rows)


def agent_rows(path: str, budget: int, args: argparse.Namespace) -> pd.DataFrame:
    """The harness rows of a trained agent on the env at ``budget``.

    Its action encoding, acceptance rule and chains come from its run.yaml. The rows' ``method`` is ``agent``,
    ``agent ×C`` for C > 1 chains (``agent ×C resample`` with the resample choice), or ``agent (<mode>)`` for a
    mode other than quota; `` across budgets`` follows for an agent trained on a list of budgets.

    Args:
        path: The ``model.zip``.
        budget: The env's NFE budget.
        args: The bench's options (task, sde, steps, episodes, seed).
    """
    kwargs = {"task": args.task, "budget": budget, "sde": args.sde, "steps": args.steps}
    table = evaluate(ENV_ID, [path], episodes=args.episodes, seed=args.seed, env_kwargs=kwargs, progress=False)
    trained = trained_agent_kwargs(path)
    mode, chains = trained.get("mode", "quota"), int(trained.get("chains", 1))
    name = f"agent ({mode})" if mode != "quota" else "agent" if chains == 1 else f"agent ×{chains}"
    if require_bool("resample", trained.get("resample", False)):
        name += " resample"
    if isinstance((run_record(path)[1].get("env_kwargs") or {}).get("budget"), list):
        name += " across budgets"
    return table.assign(method=name, budget=budget, sde=args.sde)


def generation_means(table: pd.DataFrame) -> pd.DataFrame:
    """Means per method, budget and sampler (in order of appearance) with percentile-bootstrap 95% CIs.

    Returns:
        Per group: ``reward``, ``reward_low``, ``reward_high``, the same for ``heldout`` and ``wrong_mode`` (NaN
        without modes), mean ``nfe`` and the number of ``generations``.
    """
    def describe(group: pd.DataFrame) -> pd.Series:
        values = {"nfe": group["cost"].to_numpy(dtype=float).mean(), "generations": len(group)}
        for name, column in (("reward", "reward"), ("heldout", "heldout_reward"), ("wrong_mode", "wrong_mode")):
            mean, low, high = bootstrap_mean(group[column].to_numpy(dtype=float))
            values.update({name: mean, f"{name}_low": low, f"{name}_high": high})
        return pd.Series(values)

    groups = table.groupby(["method", "budget", "sde"], sort=False)
    return groups.apply(describe, include_groups=False).reset_index()


def strongest_table(main: pd.DataFrame, tuning: pd.DataFrame, strongest: dict[int, str]) -> pd.DataFrame:
    """Per budget: the strongest rule, its tuning mean and the runner-up's, and its held-out statistics."""
    rows = []
    for budget, rule in strongest.items():
        ranked = tuning[tuning.budget == budget].sort_values("reward", ascending=False)
        held = main[(main.budget == budget) & (main.method == rule)].iloc[0]
        runner = ranked.iloc[1] if len(ranked) > 1 else None
        rows.append({"budget": budget, "strongest rule": rule, "tuning reward": f"{ranked.iloc[0].reward:.4g}",
                     "runner-up (tuning)": f"{runner.rule} {runner.reward:.4g}" if runner is not None else "–",
                     "held-out reward [95% CI]": _interval(held, "reward"),
                     "held-out verifier [95% CI]": _interval(held, "heldout"),
                     "wrong mode %": "–" if np.isnan(held.wrong_mode) else f"{100 * held.wrong_mode:.1f}"})
    return pd.DataFrame(rows)


def _interval(row: pd.Series, name: str, scale: float = 1.0) -> str:
    return f"{scale * row[name]:.4g} [{scale * row[f'{name}_low']:.4g}, {scale * row[f'{name}_high']:.4g}]"


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
            holds = vp.reward_low > linear.reward_high and linear.reward_low > ode.reward_high
            lines.append(f"- {method} at {budget} NFE: VP-SDE {vp.reward:.4g} / linear SDE {linear.reward:.4g} / "
                         f"ODE {ode.reward:.4g}: VP > linear > ODE {'holds' if holds else 'does not hold'}.")
    large = sorted(main.budget.unique())[-2:]
    for budget in large:
        by = main[main.budget == budget].set_index("method")
        rbf, svdd, bon = by.loc["RBF ×2"], by.loc["SVDD ×2"], by.loc["BoN"]
        first = rbf.reward_high >= svdd.reward_low
        second = svdd.reward_low > bon.reward_high
        lines.append(f"- {budget} NFE: RBF ×2 {rbf.reward:.4g} ≥ SVDD ×2 {svdd.reward:.4g} (within the CIs): "
                     f"{'holds' if first else 'no'}; "
                     f"SVDD ×2 > BoN {bon.reward:.4g}: {'holds' if second else 'no'}.")
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
        style = {"lw": 2.5, "marker": "*" if method == "agent" else "P", "ms": 12} \
            if method.startswith("agent") else {"marker": "o"}
        for axis, column in zip(axes, ("reward", "heldout")):
            error = np.abs(np.stack([rows[column] - rows[f"{column}_low"], rows[f"{column}_high"] - rows[column]]))
            axis.errorbar(rows.nfe, rows[column], yerr=error, capsize=2, label=method, **style)
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


def _wide(frame: pd.DataFrame, metric: str = "") -> pd.DataFrame:
    """Methods × budgets: ``reward [CI] / heldout [CI]`` cells, or the percentage of ``metric`` with its CI."""
    if metric:
        text = [_interval(row, metric, 100.0) for _, row in frame.iterrows()]
    else:
        text = [f"{_interval(row, 'reward')} / {_interval(row, 'heldout')}" for _, row in frame.iterrows()]
    wide = frame.assign(cell=text).pivot_table(index="method", columns="budget", values="cell", aggfunc="first",
                                               sort=False)
    wide = wide.astype(object).where(wide.notna(), "–")
    wide.columns = [f"{budget} NFE" for budget in wide.columns]
    return wide.reset_index()
