"""Sampler benchmark: endpoint error against NFE for hand, searched and adaptive schedules and the agent.

1. For every NFE in ``--nfe``, the shared harness runs on ``--episodes`` held-out noise seeds: the hand
   schedules (time-uniform, time-quadratic, logSNR-uniform, EDM ρ = 7) with DPM-Solver++ 2M and 3M, DDIM on
   logSNR, the searched schedules (``search:evolution`` and ``search:dp``, 2M and 3M, searched on their
   own noise batches) and the trained agents (``--agent NFE=PATH``).
2. Off-env rows (``off_env_rows``), for solvers that do not fit the env's one-NFE steps, on the noise of the
   harness rows (their ``noise_seed``): EDM's Heun on the EDM schedule (2 NFE per step) and the adaptive
   DPM-Solver-12/23 over a sweep of rtol (rejected attempts counted in its NFE).
3. Tables of the median endpoint RMSE per method and NFE, each learned or searched method's ratio to the
   best hand schedule at the same NFE, and a plot of error against NFE.
4. For a neural model (``--model digits``) the env also reports SW2, MMD and the Fréchet distance in digit-
   classifier features, and the benchmark times an env step (the harness's ``wall_time`` less the endpoint's
   scoring) against one denoiser call.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

from adaptstep.core.bench import Benchmark, off_env_row  # noqa: E402
from adaptstep.core.report import markdown_table  # noqa: E402
from adaptstep.core.settings import parse_settings  # noqa: E402
from adaptstep.diffusion.metrics import endpoint_rmse  # noqa: E402
from adaptstep.diffusion.process import load_sampler_model, noise_and_reference  # noqa: E402
from adaptstep.diffusion.quality import distribution_metrics  # noqa: E402
from adaptstep.evaluation import evaluate  # noqa: E402
from adaptstep.io import atomic_path  # noqa: E402
from adaptstep.nn.solvers import dpm_solver_adaptive, sample  # noqa: E402
from adaptstep.nn.timesteps import make_timesteps  # noqa: E402

ENV_ID = "adaptstep/DiffusionSampler-v0"
HAND_SCHEDULES = ("time_uniform", "time_quadratic", "logsnr_uniform", "edm")
SEARCHES = ("evolution", "dp")
ADAPTIVE_RTOL = (0.5, 0.2, 0.1, 0.05)
ANALYTIC_MODELS = ("gmm-2d", "gmm-64d")  # every other model is neural: the env also scores its distribution
DISTRIBUTION_METRICS = ("sw2", "mmd", "frechet")
REFERENCE_STEPS = 128  # the env's default reference_steps, which the off-env rows use too
OVERHEAD_CONTROLLER = "schedule:logsnr_uniform,solver=dpmpp2m"


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

    def section(self, args: argparse.Namespace) -> str:
        """``sampler-<model>`` unless ``--section`` names it."""
        return args.section or f"sampler-{Path(args.model).stem}"

    def heading(self, args: argparse.Namespace) -> str:
        """The section's heading."""
        return f"## Diffusion sampler: {args.model}"

    def measure(self, args: argparse.Namespace) -> pd.DataFrame:
        """The harness rows of every controller at every NFE and the off-env rows, each with its ``method``; for a
        neural model the step overhead in ``attrs["overhead"]``."""
        torch.set_num_threads(1)
        agents = parse_agents(args.agent)
        parse_settings(args.search_option, "--search-option")  # validates early
        env_kwargs = sampler_env_kwargs(args.model, args.batch_size)
        harness = pd.concat([nfe_rows(nfe, args, env_kwargs, agents.get(nfe)) for nfe in args.nfe], ignore_index=True)
        noise = harness.drop_duplicates("seed").set_index("seed")["noise_seed"]
        table = pd.concat([harness, off_env_rows(args.model, args.batch_size, noise, args.nfe, neural(args.model))],
                          ignore_index=True)
        if neural(args.model):
            table.attrs["overhead"] = step_overhead(env_kwargs)
        return table

    def render(self, table: pd.DataFrame, args: argparse.Namespace) -> str:
        """The error-per-NFE table, the adaptive solvers, the ratios to the best hand schedule, the distribution
        metrics and step overhead of a neural model, and the plot."""
        metrics = ["error", *(DISTRIBUTION_METRICS if neural(args.model) else ())]
        medians, ratios = summary_tables(table, metrics)
        in_env = medians["nfe"].isin(args.nfe) & ~medians["method"].str.startswith("adaptive")
        figure, figure_link = self.figure(args)
        plot_error_vs_nfe(medians, figure, f"{args.model}: endpoint error vs NFE ({args.episodes} held-out batches)")
        parts = [
            f"Median endpoint RMSE against the RK4 reference ({REFERENCE_STEPS} steps in λ) over {args.episodes} "
            f"held-out noise batches of {args.batch_size} (evaluation seeds {args.seed}…; agents train on a pool of "
            "256 other batches, searches on their own). EDM Heun spends 2 NFE per step.",
            markdown_table(error_per_nfe(medians[in_env])),
            "The adaptive DPM-Solver (atol 0.0078, θ 0.9, rejected attempts included) at its median NFE:",
            markdown_table(medians.loc[~in_env, ["method", "cost", "error"]].rename(columns={"cost": "median NFE"})),
            "Learned and searched methods against the best hand schedule (DPM-Solver++ 2M/3M on time-uniform, "
            "time-quadratic, logSNR-uniform, EDM) at the same NFE:",
            markdown_table(ratios),
        ]
        if neural(args.model):
            parts += ["Distribution metrics (medians): SW2, MMD (RBF, fixed bandwidth) and the Fréchet distance "
                      "in digit-classifier features, against held-out data:",
                      markdown_table(medians[["method", "nfe", *metrics]]),
                      overhead_sentence(table.attrs["overhead"], args.batch_size)]
        parts.append(f"![error vs NFE]({figure_link})")
        return "\n\n".join(parts)


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


def nfe_rows(nfe: int, args: argparse.Namespace, env_kwargs: dict[str, Any], agent: str | None) -> pd.DataFrame:
    """The harness rows of every controller on the env at ``nfe``, with their ``method``."""
    methods = controller_methods(args.search, args.search_solvers, args.search_option, agent)
    print(f"NFE {nfe}: {len(methods)} controllers x {args.episodes} episodes", file=sys.stderr)
    table = evaluate(ENV_ID, list(methods), episodes=args.episodes, seed=args.seed,
                     env_kwargs={**env_kwargs, "nfe": nfe})
    return table.assign(method=table["controller"].map(methods))


def off_env_rows(model: str, batch_size: int, noise: pd.Series, nfes: list[int], scored: bool) -> pd.DataFrame:
    """Off-env measurement: EDM Heun (EDM schedule, 2 NFE per step) at every even NFE, and adaptive
    DPM-Solver-12/23 over rtol, from the noise of each evaluation seed (``noise``: seed -> the env's noise seed);
    with ``scored`` also the distribution metrics the env would report. The columns are the harness rows'."""
    denoiser, schedule = load_sampler_model(model)
    quality = distribution_metrics(model) if scored else None
    rows = []

    def row(controller: str, seed: int, noise_seed: int, x: torch.Tensor, used: int, reference: torch.Tensor) -> dict:
        metrics = {"error": endpoint_rmse(x, reference), **(quality.metrics(x) if quality else {})}
        return off_env_row(controller, seed, used, **metrics, noise_seed=noise_seed, method=controller)

    for seed, noise_seed in noise.items():
        x_T, reference = noise_and_reference(model, batch_size, int(noise_seed), REFERENCE_STEPS)
        with torch.no_grad():
            for nfe in (n for n in nfes if n % 2 == 0):
                times = make_timesteps("edm", schedule, nfe // 2, device=x_T.device)
                x, used = sample(denoiser, schedule, x_T, times, solver="heun")
                rows.append(row("edm-heun", seed, noise_seed, x, used, reference))
            for order in (2, 3):
                for rtol in ADAPTIVE_RTOL:
                    x, used, _, _ = dpm_solver_adaptive(denoiser, schedule, x_T, order=order, rtol=rtol)
                    name = f"adaptive-dpm-solver-{order - 1}{order},rtol={rtol}"
                    rows.append(row(name, seed, noise_seed, x, used, reference))
    return pd.DataFrame(rows)


def step_overhead(env_kwargs: dict[str, Any], nfe: int = 10, episodes: int = 5) -> dict[str, float]:
    """An env step's wall time (median over the harness's episodes of seeds 0, 1, … of ``wall_time`` less the
    endpoint's scoring, per step) against the median of as many denoiser calls on a batch of the same size."""
    rows = evaluate(ENV_ID, [OVERHEAD_CONTROLLER], episodes=episodes, seed=0, env_kwargs={**env_kwargs, "nfe": nfe},
                    progress=False)
    denoiser, _ = load_sampler_model(env_kwargs["model"])
    x, _ = noise_and_reference(env_kwargs["model"], env_kwargs["batch_size"], int(rows["noise_seed"].iloc[0]),
                               REFERENCE_STEPS)
    t = torch.tensor(0.5, dtype=x.dtype, device=x.device)
    model_seconds = []
    with torch.no_grad():
        for _ in range(int(rows["steps"].sum())):
            started = time.perf_counter()
            denoiser.predict_x0(x, t)
            model_seconds.append(time.perf_counter() - started)
    step = statistics.median((rows["wall_time"] - rows["score_seconds"]) / rows["steps"])
    model = statistics.median(model_seconds)
    return {"env_step_ms": 1e3 * step, "model_call_ms": 1e3 * model, "overhead": step / model - 1}


def overhead_sentence(overhead: dict[str, float], batch_size: int) -> str:
    """The step-overhead line of a neural model's section."""
    return (f"Env step {overhead['env_step_ms']:.3f} ms against one denoiser call {overhead['model_call_ms']:.3f} ms "
            f"(batch {batch_size}): overhead {100 * overhead['overhead']:.0f}% (target ≤ 10%).")


def summary_tables(table: pd.DataFrame, metrics: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(median of every metric per method and NFE, ratios of non-hand methods to the best hand schedule).

    Methods whose NFE varies with the noise (adaptive solvers) get one point: their median NFE."""
    adaptive = table["method"].str.startswith("adaptive")
    table = table.assign(nfe=table["cost"].where(~adaptive, table.groupby("method")["cost"].transform("median")))
    medians = table.groupby(["method", "nfe"])[["cost", *metrics]].median().reset_index()
    hand = medians[medians["method"].str.startswith("schedule:") & ~medians["method"].str.contains("ddim")]
    best_hand = hand.loc[hand.groupby("nfe")["error"].idxmin(), ["nfe", "method", "error"]]
    best_hand = best_hand.rename(columns={"method": "best_hand", "error": "best_hand_error"})
    others = medians[medians["method"].str.startswith(("search:", "agent"))].merge(best_hand, on="nfe")
    others["ratio_to_best_hand"] = others["error"] / others["best_hand_error"]
    return medians, others[["nfe", "method", "error", "best_hand", "best_hand_error", "ratio_to_best_hand"]]


def error_per_nfe(medians: pd.DataFrame) -> pd.DataFrame:
    """Median error per method (rows) and NFE (columns ``NFE n``); ``–`` where a method did not run (agents run
    only at the NFE they were trained for)."""
    wide = medians.pivot(index="method", columns="nfe", values="error").reset_index()
    wide.columns = [column if column == "method" else f"NFE {column:g}" for column in wide.columns]
    return wide.astype(object).where(wide.notna(), "–")


def plot_error_vs_nfe(medians: pd.DataFrame, path: Path, title: str) -> None:
    """Median error against NFE per method (log-log), the agent in bold, searches dashed, off-env solvers dotted."""
    figure, axis = plt.subplots(figsize=(11, 5.5))
    for method, group in medians.groupby("method"):
        group = group.sort_values("cost")
        style = {"lw": 2.5, "color": "black", "marker": "*", "ms": 12} if method == "agent" else \
            {"ls": "--", "marker": "s"} if method.startswith("search:") else \
            {"ls": ":", "marker": "^"} if method.startswith(("adaptive", "edm-heun")) else {"marker": "o", "ms": 4}
        axis.plot(group["cost"], group["error"], label=method.replace("schedule:", ""), **style)
    axis.set(xscale="log", yscale="log", xlabel="NFE", ylabel="median endpoint RMSE", title=title)
    axis.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
    axis.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    fixed_budget = ~medians["method"].str.startswith("adaptive")
    axis.set_xticks(sorted(set(medians.loc[fixed_budget, "cost"].round().astype(int))))
    axis.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    figure.tight_layout()
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=120, format="png")
    plt.close(figure)
