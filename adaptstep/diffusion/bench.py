"""Sampler benchmark: endpoint error against NFE for hand, searched and adaptive schedules, the strongest
off-the-shelf baseline and the agent.

1. The strongest baseline (``adaptstep.diffusion.strongest``): at every NFE in ``--nfe`` every candidate (hand
   schedules × DPM-Solver++ 2M/3M (both 3M coefficient variants) and UniPC bh1/bh2 2/3 × final-order rules, and
   diffusers' DPM-Solver++/UniPC schedulers over their spacings, and iPNDM of orders 3 and 4 on every hand schedule,
   off the env on the same noise) runs on ``--tuning-episodes`` tuning noise batches (seeds from ``--tuning-seed``,
   disjoint from the held-out ones: checked); the lowest pooled RMSE wins.
2. For every NFE, the shared harness runs on ``--episodes`` held-out noise seeds: the winner, the hand schedules
   (time-uniform, time-quadratic, logSNR-uniform, EDM ρ = 7) with DPM-Solver++ 2M and 3M (the env's default
   final-order rule, lowered at every NFE), DDIM on logSNR, the searched schedules (``search:evolution`` and
   ``search:dp``, searched on their own noise batches) and the trained agents (``--agent NFE=PATH``).
3. Off-env rows (``off_env_rows``), for solvers that do not fit the env's one-NFE steps, on the noise of the
   harness rows (their ``noise_seed``): EDM's Heun on the EDM schedule (2 NFE per step), iPNDM of orders 3 and 4
   on every hand schedule (strongest-baseline candidates, scored off the env) and the adaptive
   DPM-Solver-12/23 over a sweep of rtol (rejected attempts counted in its NFE).
4. The statistic: per-sample endpoint errors pooled over every held-out sample of a method and NFE, RMSE =
   √(mean e²) with a percentile-bootstrap 95% CI over samples (``metrics.pooled_rmse``), and for a Gaussian mixture
   the mode-switch rate (samples whose nearest component differs from the reference's). The per-sample errors are
   pooled in memory (``table.attrs["pooled"]``) and left out of the CSV, whose per-batch ``error`` still gives the
   pooled RMSE as √(mean error²) (equal batches). Per-batch medians are a secondary table. Ratios compare learned
   and searched methods with the strongest baseline at the same NFE.
5. With ``--fresh-episodes N``, the strongest baseline and the agents run again on N fresh noise batches
   (``adaptstep.diffusion.fresh``): their paired ratio, mode-switch rates and the switch floor.
6. For a neural model (``--model digits``) the env also reports SW2, MMD and the Fréchet distance in digit-
   classifier features, and the benchmark times an env step against one denoiser call (CPU thread time, interleaved
   rounds: ``adaptstep.diffusion.speed``).
"""

from __future__ import annotations

import argparse
import math
import importlib.util
import sys
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from adaptstep.core.bench import Benchmark, off_env_row  # noqa: E402
from adaptstep.core.heldout import check_disjoint  # noqa: E402
from adaptstep.core.report import markdown_table  # noqa: E402
from adaptstep.core.settings import parse_settings  # noqa: E402
from adaptstep.diffusion.fresh import (  # noqa: E402
    FRESH_SEED,
    fresh_columns,
    fresh_rows,
    fresh_sentence,
    fresh_summary,
    switch_floors,
)
from adaptstep.diffusion.metrics import (  # noqa: E402
    endpoint_rmse,
    mode_switches,
    paired_ratio,
    pooled_rmse,
    sample_errors,
)
from adaptstep.diffusion.process import load_sampler_model, noise_and_reference  # noqa: E402
from adaptstep.diffusion.quality import distribution_metrics  # noqa: E402
from adaptstep.diffusion.speed import step_overhead_timings  # noqa: E402
from adaptstep.diffusion.strongest import (  # noqa: E402
    TUNING_SEED,
    candidate_specs,
    pooled_errors,
    select_strongest,
)
from adaptstep.evaluation import evaluate  # noqa: E402
from adaptstep.io import atomic_path  # noqa: E402
from adaptstep.nn.ipndm import sample_ipndm  # noqa: E402
from adaptstep.nn.solvers import dpm_solver_adaptive, sample  # noqa: E402
from adaptstep.nn.timesteps import make_timesteps  # noqa: E402

ENV_ID = "adaptstep/DiffusionSampler-v0"
HAND_SCHEDULES = ("time_uniform", "time_quadratic", "logsnr_uniform", "edm")
SEARCHES = ("evolution", "dp")
ADAPTIVE_RTOL = (0.5, 0.2, 0.1, 0.05)
IPNDM_ORDERS = (3, 4)
OFF_ENV_SOLVERS = ("edm-heun", "ipndm", "adaptive")  # the off-env rows' solver families
ANALYTIC_MODELS = ("gmm-2d", "gmm-64d")  # every other model is neural: the env also scores its distribution
DISTRIBUTION_METRICS = ("sw2", "mmd", "frechet")
REFERENCE_STEPS = 128  # the env's default reference_steps, which the off-env rows use too


class SamplerBenchmark(Benchmark):
    """Diffusion sampler: endpoint error against NFE for hand, searched and adaptive schedules and the agent."""

    name = "sampler"
    default_episodes = 20
    default_seed = 10_000

    def add_options(self, parser: argparse.ArgumentParser) -> None:
        """The model, the NFE budgets, the batch size, the agents and the searches."""
        parser.add_argument("--model", default="gmm-64d", help="gmm-2d, gmm-64d, digits or a denoiser.pt")
        parser.add_argument("--nfe", type=int, nargs="+", default=[4, 5, 6, 8, 10, 15, 20])
        parser.add_argument("--batch-size", type=int, default=128)
        parser.add_argument("--agent", action="append", default=[], metavar="NFE=PATH",
                            help="a model.zip trained for that NFE (repeatable)")
        parser.add_argument("--search", nargs="*", default=list(SEARCHES), help="searches to run (none: skip)")
        parser.add_argument("--search-solvers", nargs="+", default=["dpmpp2m", "dpmpp3m"],
                            choices=["dpmpp2m", "dpmpp3m"], help="solvers the searches optimise a schedule for")
        parser.add_argument("--search-option", action="append", default=[], metavar="KEY=VALUE",
                            help="passed to every search (e.g. generations=20)")
        parser.add_argument("--tuning-episodes", type=int, default=4,
                            help="tuning noise batches per candidate of the strongest baseline (0: no selection)")
        parser.add_argument("--tuning-seed", type=int, default=TUNING_SEED, help="first tuning seed")
        parser.add_argument("--no-diffusers", action="store_true",
                            help="leave diffusers' schedulers out of the strongest-baseline candidates")
        parser.add_argument("--fresh-episodes", type=int, default=0,
                            help="fresh noise batches on which the strongest baseline and the agents run again "
                                 "(0: none; needs --tuning-episodes and --agent)")
        parser.add_argument("--fresh-seed", type=int, default=FRESH_SEED, help="first fresh seed")

    def section(self, args: argparse.Namespace) -> str:
        """``sampler-<model>`` unless ``--section`` names it."""
        return args.section or f"sampler-{Path(args.model).stem}"

    def heading(self, args: argparse.Namespace) -> str:
        """The section's heading."""
        return f"## Diffusion sampler: {args.model}"

    def measure(self, args: argparse.Namespace) -> pd.DataFrame:
        """The harness rows of every controller at every NFE and the off-env rows, each with its ``method`` and
        whether it is the NFE's ``strongest`` baseline; in ``attrs``: ``pooled`` (the pooled statistics per method
        and NFE), ``tuning`` (every candidate's tuning score), ``fresh`` (``fresh.fresh_summary``; empty without
        ``--fresh-episodes``) and for a neural model ``overhead``. With fresh rows the table has a ``noise`` column
        (``held-out`` or ``fresh``)."""
        torch.set_num_threads(1)

        def ipndm(noise: pd.Series, nfe: int) -> pd.DataFrame:
            """iPNDM's rows on the given noise (the off-env candidates)."""
            return off_env_rows(args.model, args.batch_size, noise, [nfe], False, ("ipndm",))

        agents = parse_agents(args.agent)
        parse_settings(args.search_option, "--search-option")  # validates early
        if args.fresh_episodes < 0 or (args.fresh_episodes and not (args.tuning_episodes > 0 and agents)):
            raise ValueError(f"--fresh-episodes must be 0, or >= 1 with --tuning-episodes >= 1 and an --agent, got "
                             f"{args.fresh_episodes}")
        env_kwargs = sampler_env_kwargs(args.model, args.batch_size)
        heldout = range(args.seed, args.seed + args.episodes)
        winners, tuning, candidates = {}, pd.DataFrame(), {}
        if args.tuning_episodes > 0:
            candidates = {nfe: candidate_specs(nfe, diffusers=not args.no_diffusers and has_diffusers())
                          for nfe in args.nfe}

            winners, tuning = select_strongest(args.nfe, env_kwargs, heldout, args.tuning_episodes, args.tuning_seed,
                                               candidates, off_env=ipndm)
        in_harness = {nfe: spec for nfe, spec in winners.items() if spec in candidates[nfe]}  # not an off-env winner
        harness = pd.concat([nfe_rows(nfe, args, env_kwargs, agents.get(nfe), in_harness.get(nfe))
                             for nfe in args.nfe], ignore_index=True)
        if len(tuning):
            check_disjoint(tuning["noise_seed"], harness["noise_seed"])
        noise = harness.drop_duplicates("seed").set_index("seed")["noise_seed"]
        table = pd.concat([harness, off_env_rows(args.model, args.batch_size, noise, args.nfe, neural(args.model))],
                          ignore_index=True)
        table["strongest"] = [winners.get(nfe) == controller for nfe, controller in zip(table["cost"],
                                                                                          table["controller"])]
        pooled = pooled_table(table)
        fresh = pd.DataFrame()
        if args.fresh_episodes:
            rows = fresh_rows(agents, winners, candidates, env_kwargs,
                              range(args.fresh_seed, args.fresh_seed + args.fresh_episodes),
                              [*heldout, *tuning["seed"]], [*harness["noise_seed"], *tuning["noise_seed"]], ipndm)
            fresh = fresh_summary(rows, switch_floors(tuning))
            table = pd.concat([table.assign(noise="held-out"), rows.drop(columns="nfe").assign(
                noise="fresh", strongest=rows["method"] == "strongest",
                method=rows["controller"].where(rows["method"] == "strongest", "agent"))], ignore_index=True)
        table = table.drop(columns=["sample_errors"])
        table.attrs["fresh"] = fresh
        table.attrs["pooled"] = pooled
        table.attrs["tuning"] = tuning_summary(tuning, winners)
        if neural(args.model):
            table.attrs["overhead"] = step_overhead(env_kwargs)
        return table

    def render(self, table: pd.DataFrame, args: argparse.Namespace) -> str:
        """The pooled error per NFE (with CIs), mode switches, per-batch medians, the adaptive solvers, the strongest
        baselines and the ratios to them, the distribution metrics and step overhead of a neural model, and the
        plot."""
        metrics = ["error", *(DISTRIBUTION_METRICS if neural(args.model) else ())]
        pooled = table.attrs["pooled"]
        medians = summary_medians(table[table["noise"] != "fresh"] if "noise" in table else table, metrics)
        in_env = pooled["nfe"].isin(args.nfe) & ~pooled["method"].str.startswith("adaptive")
        figure, figure_link = self.figure(args)
        samples = args.episodes * args.batch_size
        plot_error_vs_nfe(pooled, figure, f"{args.model}: pooled endpoint RMSE vs NFE ({samples} held-out samples)")
        parts = [
            f"Endpoint RMSE against the RK4 reference ({REFERENCE_STEPS} steps in λ), pooled over the {samples} "
            f"samples of {args.episodes} held-out noise batches of {args.batch_size} (evaluation seeds {args.seed}…; "
            "agents train on a pool of 256 other batches, searches and the strongest-baseline selection on their "
            "own), with a bootstrap 95% CI over samples. EDM Heun spends 2 NFE per step. Hand rows use the env's "
            "final-order rule (lowered to the NFE left at every NFE).",
            markdown_table(wide(pooled[in_env], "pooled")),
        ]
        if not neural(args.model):
            parts += ["Mode-switch rate (share of samples whose nearest mixture component differs from the "
                      "reference's):", markdown_table(wide(pooled[in_env], "mode_switch_rate"))]
        parts += ["Per-batch medians of the endpoint RMSE (the former headline; one mode switch moves a batch's "
                  "RMSE):", markdown_table(error_per_nfe(medians[medians["method"].isin(pooled.loc[in_env,
                                                                                                   "method"])]))]
        parts += ["The adaptive DPM-Solver (atol 0.0078, θ 0.9, rejected attempts included) at its median NFE:",
                  markdown_table(pooled.loc[~in_env, ["method", "nfe", "pooled"]].rename(
                      columns={"nfe": "median NFE", "pooled": "pooled RMSE [95% CI]"}))]
        tuning = table.attrs.get("tuning")
        if tuning is not None and len(tuning):
            parts += [f"Strongest baseline per NFE, chosen by pooled RMSE on {args.tuning_episodes} tuning batches "
                      f"(seeds {args.tuning_seed}…) among {tuning['candidates'].iloc[0]} candidates, then on the "
                      "held-out samples:", markdown_table(strongest_table(pooled, tuning))]
            parts += ["Learned, searched and iPNDM methods against the strongest baseline at the same NFE (pooled "
                      "RMSE; iPNDM runs off the env on the same noise and is a candidate; the ratio's CI is a paired "
                      "bootstrap over the same held-out samples):",
                      markdown_table(ratios_to_strongest(pooled, tuning))]
        fresh = table.attrs.get("fresh")
        if fresh is not None and len(fresh):
            parts += [fresh_sentence(args), markdown_table(fresh_columns(fresh))]
        if neural(args.model):
            parts += ["Distribution metrics (medians): SW2, MMD (RBF, fixed bandwidth) and the Fréchet distance "
                      "in digit-classifier features, against held-out data:",
                      markdown_table(medians[["method", "nfe", *metrics]]),
                      overhead_sentence(table.attrs["overhead"], args.batch_size)]
        parts.append(f"![error vs NFE]({figure_link})")
        return "\n\n".join(parts)


def has_diffusers() -> bool:
    """Whether the optional diffusers is installed (its schedulers are then strongest-baseline candidates)."""
    return importlib.util.find_spec("diffusers") is not None


def neural(model: str) -> bool:
    """Whether ``model`` is a neural denoiser (not an analytic mixture)."""
    return model not in ANALYTIC_MODELS


def sampler_env_kwargs(model: str, batch_size: int) -> dict[str, Any]:
    """The env kwargs of every row (a neural model's env also scores the distribution)."""
    return {"model": model, "batch_size": batch_size, **({"distribution_metrics": True} if neural(model) else {})}


def parse_agents(items: list[str]) -> dict[int, str]:
    """``--agent NFE=PATH`` items -> {NFE: PATH}."""
    agents = {}
    for item in items:
        nfe, separator, path = item.partition("=")
        if not separator or not nfe.isdigit() or not path:
            raise ValueError(f"--agent must look like NFE=PATH (e.g. 10=runs/sampler-nfe10/model.zip), got {item!r}")
        agents[int(nfe)] = path
    return agents


def controller_methods(searches: list[str], search_solvers: list[str], search_options: list[str],
                       agent: str | None) -> dict[str, str]:
    """The controller specs of one NFE -> their method names (an agent's is ``agent``)."""
    specs = [f"schedule:{name},solver={solver}" for solver in ("dpmpp2m", "dpmpp3m") for name in HAND_SCHEDULES]
    specs.append("schedule:logsnr_uniform,solver=ddim")
    options = "".join(f",{option}" for option in search_options)
    specs += [f"search:{method},solver={solver}{options}" for method in searches for solver in search_solvers]
    return {**{spec: spec for spec in specs}, **({agent: "agent"} if agent else {})}


def nfe_rows(nfe: int, args: argparse.Namespace, env_kwargs: dict[str, Any], agent: str | None,
             strongest: str | None = None) -> pd.DataFrame:
    """The harness rows of every controller (and the ``strongest`` baseline's) on the env at ``nfe``, with their
    ``method``."""
    methods = controller_methods(args.search, args.search_solvers, args.search_option, agent)
    if strongest is not None:
        methods.setdefault(strongest, strongest)
    print(f"NFE {nfe}: {len(methods)} controllers x {args.episodes} episodes", file=sys.stderr)
    table = evaluate(ENV_ID, list(methods), episodes=args.episodes, seed=args.seed,
                     env_kwargs={**env_kwargs, "nfe": nfe})
    return table.assign(method=table["controller"].map(methods))


def off_env_rows(model: str, batch_size: int, noise: pd.Series, nfes: list[int], scored: bool,
                 solvers: tuple[str, ...] = OFF_ENV_SOLVERS) -> pd.DataFrame:
    """Off-env measurement of the ``solvers`` families: EDM Heun (EDM schedule, 2 NFE per step) at every even NFE,
    iPNDM of orders 3 and 4 on every hand schedule at every NFE (``nn.ipndm``: equal-step Adams–Bashforth
    coefficients in EDM's σ), and adaptive DPM-Solver-12/23 over rtol, from the noise of each evaluation seed
    (``noise``: seed -> the env's noise seed); with ``scored`` also the distribution metrics the env would report.
    The columns are the harness rows'."""
    denoiser, schedule = load_sampler_model(model)
    quality = distribution_metrics(model) if scored else None
    rows = []

    centres = getattr(denoiser, "means", None)

    def row(controller: str, seed: int, noise_seed: int, x: torch.Tensor, used: int, reference: torch.Tensor) -> dict:
        metrics = {"error": endpoint_rmse(x, reference), **(quality.metrics(x) if quality else {})}
        if centres is not None:
            metrics["mode_switch_rate"] = float(mode_switches(x, reference, schedule.alpha(schedule.t_min) * centres)
                                                .mean())
        return off_env_row(controller, seed, used, **metrics, noise_seed=noise_seed,
                           sample_errors=sample_errors(x, reference).tolist(), method=controller)

    for seed, noise_seed in noise.items():
        x_T, reference = noise_and_reference(model, batch_size, int(noise_seed), REFERENCE_STEPS)
        with torch.no_grad():
            for nfe in (n for n in nfes if n % 2 == 0 and "edm-heun" in solvers):
                times = make_timesteps("edm", schedule, nfe // 2, device=x_T.device)
                x, used = sample(denoiser, schedule, x_T, times, solver="heun")
                rows.append(row("edm-heun", seed, noise_seed, x, used, reference))
            for nfe in (nfes if "ipndm" in solvers else []):
                for name in HAND_SCHEDULES:
                    for order in IPNDM_ORDERS:
                        times = make_timesteps(name, schedule, nfe, device=x_T.device)
                        x, used = sample_ipndm(denoiser, schedule, x_T, times, order)
                        rows.append(row(f"ipndm{order}:{name}", seed, noise_seed, x, used, reference))
            for order in ((2, 3) if "adaptive" in solvers else ()):
                for rtol in ADAPTIVE_RTOL:
                    x, used, _, _ = dpm_solver_adaptive(denoiser, schedule, x_T, order=order, rtol=rtol)
                    name = f"adaptive-dpm-solver-{order - 1}{order},rtol={rtol}"
                    rows.append(row(name, seed, noise_seed, x, used, reference))
    return pd.DataFrame(rows)


def step_overhead(env_kwargs: dict[str, Any], nfe: int = 10) -> dict[str, float]:
    """An env step's CPU thread time against one denoiser call on a batch of the same size: the minima of 5
    interleaved rounds (``adaptstep.diffusion.speed.step_overhead_timings``; the scored last step left out)."""
    row = step_overhead_timings(env_kwargs["model"], env_kwargs["batch_size"], nfe).iloc[0]
    return {key: float(row[key]) for key in ("env_step_ms", "model_call_ms", "overhead")}


def overhead_sentence(overhead: dict[str, float], batch_size: int) -> str:
    """The step-overhead line of a neural model's section."""
    return (f"Env step {overhead['env_step_ms']:.3f} ms against one denoiser call {overhead['model_call_ms']:.3f} ms "
            f"(batch {batch_size}; CPU thread time, minima of 5 interleaved rounds): overhead "
            f"{100 * overhead['overhead']:.0f}% (target ≤ 10%).")


def _nfe(table: pd.DataFrame) -> pd.Series:
    """Each row's NFE; methods whose NFE varies with the noise (adaptive solvers) get their median NFE."""
    adaptive = table["method"].str.startswith("adaptive")
    return table["cost"].where(~adaptive, table.groupby("method")["cost"].transform("median"))


def summary_medians(table: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """The median of every metric per method and NFE (the per-batch statistic)."""
    return table.assign(nfe=_nfe(table)).groupby(["method", "nfe"])[["cost", *metrics]].median().reset_index()


def pooled_table(table: pd.DataFrame) -> pd.DataFrame:
    """Per method and NFE: ``samples``, the pooled RMSE over every sample (``rmse``) with its bootstrap 95% CI
    (``ci_low``, ``ci_high``), ``pooled`` (the three as text), ``mode_switch_rate`` over every sample (NaN for a
    model that is not a mixture), ``median_batch_error`` and ``errors`` (the per-sample errors in seed order, so
    that methods run on the same seeds pair sample by sample)."""
    rows = []
    for (method, nfe), group in table.assign(nfe=_nfe(table)).groupby(["method", "nfe"]):
        errors = pooled_errors(group.sort_values("seed", kind="stable"))
        rmse, low, high = pooled_rmse(errors)
        switches = group["mode_switch_rate"].mean() if "mode_switch_rate" in group else math.nan
        rows.append({"method": method, "nfe": nfe, "samples": len(errors), "rmse": rmse, "ci_low": low,
                     "ci_high": high, "pooled": f"{rmse:.3g} [{low:.3g}, {high:.3g}]",
                     "mode_switch_rate": switches, "median_batch_error": group["error"].median(),
                     "strongest": bool(group["strongest"].any()) if "strongest" in group else False,
                     "errors": errors})
    return pd.DataFrame(rows)


def tuning_summary(tuning: pd.DataFrame, winners: dict[int, str]) -> pd.DataFrame:
    """Per NFE and candidate: its pooled tuning RMSE, whether it won, and how many candidates ran."""
    if not len(tuning):
        return pd.DataFrame()
    summary = tuning.groupby(["nfe", "controller"], sort=False)["pooled_rmse"].first().reset_index()
    summary["winner"] = [winners.get(nfe) == spec for nfe, spec in zip(summary["nfe"], summary["controller"])]
    summary["candidates"] = summary.groupby("nfe")["controller"].transform("size")
    return summary


def strongest_table(pooled: pd.DataFrame, tuning: pd.DataFrame) -> pd.DataFrame:
    """Per NFE: the strongest baseline's spec, its tuning RMSE and its held-out pooled RMSE, CI and mode switches."""
    won = tuning[tuning["winner"]].rename(columns={"controller": "method", "pooled_rmse": "tuning RMSE"})
    won = won.assign(nfe=won["nfe"].astype(float))
    held = pooled[["method", "nfe", "pooled", "mode_switch_rate"]].rename(columns={"pooled": "held-out RMSE [95% CI]"})
    return won[["nfe", "method", "tuning RMSE"]].merge(held, on=["nfe", "method"]).dropna(axis=1, how="all")


def ratios_to_strongest(pooled: pd.DataFrame, tuning: pd.DataFrame) -> pd.DataFrame:
    """Learned (``agent``), searched and iPNDM methods' (but the strongest's own) pooled RMSE against the strongest
    baseline's at the same NFE, with the ratio's paired bootstrap 95% CI (``ratio [95% CI]``, both methods' errors
    resampled on the same samples)."""
    won = tuning.loc[tuning["winner"], ["nfe", "controller"]].rename(columns={"controller": "strongest_method"})
    won["nfe"] = won["nfe"].astype(float)
    best = won.merge(pooled[["method", "nfe", "rmse", "errors"]], left_on=["nfe", "strongest_method"],
                     right_on=["nfe", "method"])
    best = best[["nfe", "strongest_method", "rmse", "errors"]].rename(columns={"rmse": "strongest_rmse",
                                                                               "errors": "strongest_errors"})
    others = pooled[pooled["method"].str.startswith(("search:", "agent", "ipndm"))].merge(best, on="nfe")
    others = others[others["method"] != others["strongest_method"]]
    others["ratio_to_strongest"] = others["rmse"] / others["strongest_rmse"]
    intervals = [paired_ratio(a, b) for a, b in zip(others["errors"], others["strongest_errors"])]
    others["ratio [95% CI]"] = [f"{r:.2f} [{low:.2f}, {high:.2f}]" for r, low, high in intervals]
    return others[["nfe", "method", "pooled", "strongest_method", "strongest_rmse", "ratio_to_strongest",
                   "ratio [95% CI]"]]


def wide(pooled: pd.DataFrame, column: str) -> pd.DataFrame:
    """``column`` per method (rows) and NFE (columns ``NFE n``); ``–`` where a method did not run."""
    table = pooled.pivot(index="method", columns="nfe", values=column).reset_index()
    table.columns = [name if name == "method" else f"NFE {name:g}" for name in table.columns]
    return table.astype(object).where(table.notna(), "–")


def error_per_nfe(medians: pd.DataFrame) -> pd.DataFrame:
    """Median error per method (rows) and NFE (columns ``NFE n``); ``–`` where a method did not run (agents run
    only at the NFE they were trained for)."""
    wide = medians.pivot(index="method", columns="nfe", values="error").reset_index()
    wide.columns = [column if column == "method" else f"NFE {column:g}" for column in wide.columns]
    return wide.astype(object).where(wide.notna(), "–")


def plot_error_vs_nfe(medians: pd.DataFrame, path: Path, title: str) -> None:
    """Pooled RMSE (``rmse`` of ``pooled_table``) against NFE per method (log-log), the agent in bold, the strongest
    baselines red, searches dashed, off-env solvers dotted."""
    figure, axis = plt.subplots(figsize=(11, 5.5))
    for method, group in medians.groupby("method"):
        group = group.sort_values("nfe")
        style = {"lw": 2.5, "color": "black", "marker": "*", "ms": 12} if method == "agent" else \
            {"ls": "none", "color": "red", "marker": "D", "ms": 7} if group["strongest"].any() else \
            {"ls": "--", "marker": "s"} if method.startswith("search:") else \
            {"ls": ":", "marker": "^"} if method.startswith(("adaptive", "edm-heun")) else {"marker": "o", "ms": 4}
        axis.plot(group["nfe"], group["rmse"], label=method.replace("schedule:", ""), **style)
    axis.set(xscale="log", yscale="log", xlabel="NFE", ylabel="pooled endpoint RMSE", title=title)
    axis.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    fixed_budget = ~medians["method"].str.startswith("adaptive")
    axis.set_xticks(sorted(set(medians.loc[fixed_budget, "nfe"].round().astype(int))))
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=120, format="png")
    plt.close(figure)
