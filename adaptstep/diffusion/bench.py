"""Sampler benchmark: endpoint error against NFE for hand, searched and adaptive schedules and the agent.

1. For every NFE in ``--nfe``, the shared harness runs on ``--episodes`` held-out noise seeds: the hand
   schedules (time-uniform, time-quadratic, logSNR-uniform, EDM ρ = 7) with DPM-Solver++ 2M and 3M, DDIM on
   logSNR, the searched schedules (``search:evolution`` and ``search:dp``, 2M and 3M, searched on their
   own noise batches) and the trained agents (``--agent NFE=PATH``).
2. Solvers that do not fit the env's one-NFE steps run on the same noise outside it: EDM's Heun on the EDM
   schedule (2 NFE per step) and the adaptive DPM-Solver-12/23 over a sweep of rtol (rejected attempts
   counted in its NFE).
3. Tables of the median endpoint RMSE per method and NFE, each learned or searched method's ratio to the
   best hand schedule at the same NFE, and a plot of error against NFE.
4. For a neural model (``--model digits``) the env also reports SW2, MMD and the Fréchet distance in digit-
   classifier features, and the benchmark times an env step against one denoiser call.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import time
from pathlib import Path

import gymnasium as gym
import numpy as np
import pandas as pd
import torch

from adaptstep.core.report import (
    machine_description,
    markdown_table,
    section_figure,
    write_section,
)
from adaptstep.diffusion.metrics import endpoint_rmse
from adaptstep.diffusion.process import load_model, noise_and_reference
from adaptstep.diffusion.quality import distribution_metrics
from adaptstep.diffusion.solvers import dpm_solver_adaptive, sample
from adaptstep.diffusion.timesteps import make_timesteps
from adaptstep.evaluation import evaluate
from adaptstep.io import atomic_path
from adaptstep.specs import parse_value

ENV_ID = "adaptstep/DiffusionSampler-v0"
HAND_SCHEDULES = ("time_uniform", "time_quadratic", "logsnr_uniform", "edm")
SEARCHES = ("evolution", "dp")
ADAPTIVE_RTOL = (0.5, 0.2, 0.1, 0.05)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", default="gmm-64d", help="gmm-2d, gmm-64d, digits or a denoiser.pt")
    parser.add_argument("--nfe", type=int, nargs="+", default=[4, 5, 6, 8, 10, 15, 20])
    parser.add_argument("--episodes", type=int, default=20, help="held-out noise batches per method and NFE")
    parser.add_argument("--seed", type=int, default=10_000, help="first evaluation seed")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--agent", action="append", default=[], metavar="NFE=PATH",
                        help="a model.zip trained for that NFE (repeatable)")
    parser.add_argument("--search", nargs="*", default=list(SEARCHES), help="searches to run (none: skip)")
    parser.add_argument("--search-solvers", nargs="+", default=["dpmpp2m", "dpmpp3m"], choices=["dpmpp2m", "dpmpp3m"],
                        help="solvers the searches optimise a schedule for")
    parser.add_argument("--search-option", action="append", default=[], metavar="KEY=VALUE",
                        help="passed to every search (e.g. generations=20)")
    parser.add_argument("--out-dir", default="runs/bench-sampler", help="the CSV goes here")
    parser.add_argument("--benchmarks-file", default="BENCHMARKS.md")
    parser.add_argument("--section", default=None, help="BENCHMARKS.md section name (default sampler-<model>)")


def parse_agents(items: list[str]) -> dict[int, str]:
    agents = {}
    for item in items:
        nfe, separator, path = item.partition("=")
        if not separator or not nfe.isdigit() or not path:
            raise ValueError(f"--agent must look like NFE=PATH (e.g. 10=runs/sampler-nfe10/model.zip), got {item!r}")
        agents[int(nfe)] = path
    return agents


def agent_spec(path: str, nfe: int) -> str:
    """The controller spec of a trained agent at ``nfe`` (its order settings come from its run.yaml)."""
    return f"{path}@nfe={nfe}"


def controller_specs(nfe: int, searches: list[str], search_solvers: list[str], search_options: list[str],
                     agent: str | None) -> list[str]:
    specs = [f"schedule:{name},solver={solver}@nfe={nfe}" for solver in ("dpmpp2m", "dpmpp3m")
             for name in HAND_SCHEDULES]
    specs.append(f"schedule:logsnr_uniform,solver=ddim@nfe={nfe}")
    options = "".join(f",{option}" for option in search_options)
    specs += [f"search:{method},solver={solver}{options}@nfe={nfe}" for method in searches
              for solver in search_solvers]
    if agent:
        specs.append(agent_spec(agent, nfe))
    return specs


def method_name(spec: str) -> str:
    """A controller spec without its ``@nfe=…`` override (agents: ``agent``)."""
    head = spec.split("@", 1)[0]
    return "agent" if head.endswith(".zip") else head


def held_out_noise(env_kwargs: dict, seeds: range) -> list[int]:
    """The noise seeds the env draws for these evaluation seeds (so solvers outside it see the same noise)."""
    env = gym.make(ENV_ID, **{**env_kwargs, "nfe": 1})
    return [env.reset(seed=seed)[1]["noise_seed"] for seed in seeds]


def off_env_rows(model: str, batch_size: int, seeds: range, noise_seeds: list[int], nfes: list[int],
                 scored: bool) -> pd.DataFrame:
    """EDM Heun (EDM schedule, 2 NFE per step) at every even NFE, and adaptive DPM-Solver-12/23 over rtol, on the
    noise of the evaluation ``seeds``; with ``scored`` also the distribution metrics the env would report."""
    denoiser, schedule = load_model(model)
    quality = distribution_metrics(model) if scored else None
    rows = []

    def row(controller: str, seed: int, x: torch.Tensor, used: int, reference: torch.Tensor) -> dict:
        return {"controller": controller, "seed": seed, "cost": used, "error": endpoint_rmse(x, reference),
                **(quality.metrics(x) if quality else {})}

    for seed, noise_seed in zip(seeds, noise_seeds):
        x_T, reference = noise_and_reference(model, batch_size, noise_seed, 128)
        with torch.no_grad():
            for nfe in (n for n in nfes if n % 2 == 0):
                times = make_timesteps("edm", schedule, nfe // 2, device=x_T.device)
                x, used = sample(denoiser, schedule, x_T, times, solver="heun")
                rows.append(row("edm-heun", seed, x, used, reference))
            for order in (2, 3):
                for rtol in ADAPTIVE_RTOL:
                    x, used, _, _ = dpm_solver_adaptive(denoiser, schedule, x_T, order=order, rtol=rtol)
                    rows.append(row(f"adaptive-dpm-solver-{order - 1}{order},rtol={rtol}", seed, x, used, reference))
    return pd.DataFrame(rows)


def step_overhead(env_kwargs: dict, nfe: int = 10, episodes: int = 5) -> dict[str, float]:
    """Median wall time of an env step against one denoiser call on a batch of the same size."""
    env = gym.make(ENV_ID, **{**env_kwargs, "nfe": nfe})
    denoiser, _ = load_model(env_kwargs["model"])
    step_seconds = []
    for seed in range(episodes):
        env.reset(seed=seed)
        done = False
        while not done:
            started = time.perf_counter()
            _, _, done, _, _ = env.step(np.array([1 / nfe], np.float32))
            if not done:  # the last step also scores the episode
                step_seconds.append(time.perf_counter() - started)
    x = env.unwrapped.process.x
    t = torch.tensor(0.5, dtype=x.dtype, device=x.device)
    model_seconds = []
    with torch.no_grad():
        for _ in range(len(step_seconds)):
            started = time.perf_counter()
            denoiser.predict_x0(x, t)
            model_seconds.append(time.perf_counter() - started)
    step, model = statistics.median(step_seconds), statistics.median(model_seconds)
    return {"env_step_ms": 1e3 * step, "model_call_ms": 1e3 * model, "overhead": step / model - 1}


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


def plot_error_vs_nfe(medians: pd.DataFrame, path: Path, title: str) -> None:
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as temporary:
        figure.savefig(temporary, dpi=120, format="png")
    plt.close(figure)


def run(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    agents = parse_agents(args.agent)
    for option in args.search_option:
        parse_value(option.partition("=")[2])  # validates early
    neural = args.model not in ("gmm-2d", "gmm-64d")
    env_kwargs = {"model": args.model, "batch_size": args.batch_size}
    if neural:
        env_kwargs["distribution_metrics"] = True
    frames = []
    for nfe in args.nfe:
        specs = controller_specs(nfe, args.search, args.search_solvers, args.search_option, agents.get(nfe))
        print(f"NFE {nfe}: {len(specs)} controllers x {args.episodes} episodes", file=sys.stderr)
        frames.append(evaluate(ENV_ID, specs, episodes=args.episodes, seed=args.seed, env_kwargs=env_kwargs))
    seeds = range(args.seed, args.seed + args.episodes)
    off_env = off_env_rows(args.model, args.batch_size, seeds, held_out_noise(env_kwargs, seeds), args.nfe, neural)
    table = pd.concat([*frames, off_env], ignore_index=True)
    table["method"] = table["controller"].map(method_name)
    out_dir = Path(args.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    with atomic_path(out_dir / f"sampler_{Path(args.model).stem}.csv") as temporary:
        table.to_csv(temporary, index=False)
    metrics = ["error", *(["sw2", "mmd", "frechet"] if neural else [])]
    medians, ratios = summary_tables(table, metrics)
    in_env = medians["nfe"].isin(args.nfe) & ~medians["method"].str.startswith("adaptive")
    wide = medians[in_env].pivot(index="method", columns="nfe", values="error").reset_index()
    wide.columns = [column if column == "method" else f"NFE {column:g}" for column in wide.columns]
    wide = wide.astype(object).where(wide.notna(), "–")  # agents run only at the NFE they were trained for
    adaptive = medians.loc[~in_env, ["method", "cost", "error"]].rename(columns={"cost": "median NFE"})
    section = args.section or f"sampler-{Path(args.model).stem}"
    figure, figure_link = section_figure(args.benchmarks_file, section)  # embedded in its section
    plot_error_vs_nfe(medians, figure,
                      f"{args.model}: endpoint error vs NFE ({args.episodes} held-out batches)")
    command = "adaptstep bench sampler " + shlex.join(sys.argv[3:] if sys.argv[1:3] == ["bench", "sampler"] else [])
    parts = [
        f"## Diffusion sampler: {args.model}",
        f"Command: `{command.strip()}`  \nMachine: {machine_description()}",
        f"Median endpoint RMSE against the RK4 reference (128 steps in λ) over {args.episodes} held-out noise "
        f"batches of {args.batch_size} (evaluation seeds {args.seed}…; agents train on a pool of 256 other "
        "batches, searches on their own). EDM Heun spends 2 NFE per step.",
        markdown_table(wide),
        "The adaptive DPM-Solver (atol 0.0078, θ 0.9, rejected attempts included) at its median NFE:",
        markdown_table(adaptive),
        "Learned and searched methods against the best hand schedule (DPM-Solver++ 2M/3M on time-uniform, "
        "time-quadratic, logSNR-uniform, EDM) at the same NFE:",
        markdown_table(ratios),
    ]
    if neural:
        parts += ["Distribution metrics (medians): SW2, MMD (RBF, fixed bandwidth) and the Fréchet distance "
                  "in digit-classifier features, against held-out data:",
                  markdown_table(medians[["method", "nfe", *metrics]])]
        overhead = step_overhead(env_kwargs)
        parts.append(f"Env step {overhead['env_step_ms']:.3f} ms against one denoiser call "
                     f"{overhead['model_call_ms']:.3f} ms (batch {args.batch_size}): overhead "
                     f"{100 * overhead['overhead']:.0f}% (target ≤ 10%).")
    parts.append(f"![error vs NFE]({figure_link})")
    write_section(args.benchmarks_file, section, "\n\n".join(parts))
    print(markdown_table(wide))
    print(markdown_table(ratios))
