"""The sampler family's commands: ``adaptstep export-schedule``, ``search-schedule`` and ``train-denoiser``."""

from __future__ import annotations

import argparse
import math
from typing import Any

import gymnasium as gym

from adaptstep.agents.controllers import parse_controller
from adaptstep.core.settings import parse_settings
from adaptstep.diffusion.baselines import SearchedSchedule
from adaptstep.diffusion.export import export_schedule, save_schedule
from adaptstep.diffusion.process import SamplingProcess
from adaptstep.diffusion.search import searched_schedule
from adaptstep.diffusion.stored_search import save_search, search_key
from adaptstep.diffusion.training import train_denoiser
from adaptstep.evaluation import play_episode

ENV_ID = "adaptstep/DiffusionSampler-v0"


def add_commands(commands: argparse._SubParsersAction, data: argparse._SubParsersAction) -> None:
    """Add the family's subcommands to ``adaptstep``.

    Args:
        commands: The subparsers of ``adaptstep``.
        data: The subparsers of ``adaptstep data``.
    """
    export = commands.add_parser("export-schedule", help="run one diffusion-sampler episode and write its schedule as JSON")
    export.add_argument("--controller", required=True, metavar="SPEC",
                        help="a saved model (.zip) or a baseline such as schedule:logsnr_uniform,solver=dpmpp2m")
    export.add_argument("--env-kwarg", action="append", default=[], metavar="KEY=VALUE",
                        help="adaptstep/DiffusionSampler-v0 kwargs, e.g. model=gmm-2d or nfe=10")
    export.add_argument("--seed", type=int, default=0, help="the episode's reset seed (its noise)")
    export.add_argument("--out", required=True, help="JSON file (see adaptstep.diffusion.export)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    export.set_defaults(func=cmd_export_schedule)

    search = commands.add_parser("search-schedule", help="run a search: baseline's schedule search afresh and write it "
                                                         "as JSON (ship it with `adaptstep zoo add`)")
    search.add_argument("--controller", required=True, metavar="SPEC",
                        help="a search baseline, e.g. search:evolution,solver=dpmpp3m,batches=8")
    search.add_argument("--env-kwarg", action="append", default=[], metavar="KEY=VALUE",
                        help="the env it searches for, as evaluate builds it (envs/diffusion.yaml: model=gmm-64d)")
    search.add_argument("--out", required=True, help="JSON file (adaptstep.diffusion.stored_search)")
    search.set_defaults(func=cmd_search_schedule)
    denoiser = commands.add_parser("train-denoiser", help="train a small neural denoiser on a dataset shipped with a package")
    denoiser.add_argument("--data", required=True, help="digits, two-moons or checkerboard")
    denoiser.add_argument("--out", required=True, help="folder for denoiser.pt")
    denoiser.add_argument("--steps", type=int, default=8000)
    denoiser.add_argument("--batch-size", type=int, default=256)
    denoiser.add_argument("--schedule", default="linear", help="VP noise schedule: linear, cosine or discrete")
    denoiser.add_argument("--seed", type=int, default=0)
    denoiser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    denoiser.add_argument("--overwrite", action="store_true", help="replace an existing denoiser.pt in --out")
    denoiser.add_argument("--no-progress", action="store_true")
    denoiser.set_defaults(func=cmd_train_denoiser)


def cmd_train_denoiser(args: argparse.Namespace) -> None:
    """``adaptstep train-denoiser``: train a denoiser on a data set and save it (``train_denoiser``)."""
    path = train_denoiser(args.data, args.out, steps=args.steps, batch_size=args.batch_size, schedule=args.schedule,
                          seed=args.seed, device=args.device, progress=not args.no_progress, overwrite=args.overwrite)
    print(f"saved {path}")


def cmd_export_schedule(args: argparse.Namespace) -> None:
    """``adaptstep export-schedule``: run one episode of a controller and write its schedule as JSON."""
    controller = parse_controller(args.controller)
    env_kwargs = {**parse_settings(args.env_kwarg, "--env-kwarg"), **controller.env_overrides}
    env = gym.make(ENV_ID, **env_kwargs)
    try:
        row = play_episode(env, controller, args.seed)
        sampler = env.unwrapped
        process = sampler.process  # the finished episode: its times and orders are the env's info["times"], ["orders"]
        error = row["error"] if math.isfinite(row["error"]) else None
        solver, solver_options = _solver_record(process)
        schedule = export_schedule(
            process.times, process.orders, process.schedule, solver, nfe=row["cost"], model=sampler.model,
            source=args.controller, solver_options=solver_options,
            metadata={"env_id": ENV_ID, "env_kwargs": env_kwargs, "seed": args.seed, "error": error})
    finally:
        env.close()
    save_schedule(args.out, schedule, overwrite=args.overwrite)
    print(f"wrote {args.out}: {schedule.steps} steps, NFE {schedule.nfe}, endpoint RMSE {row['error']:.3g}")


def _solver_record(process: SamplingProcess) -> tuple[str, dict[str, Any]]:
    """The export's solver name for a finished episode (one solver at every step, else "switching") and its options:
    the per-step solvers when they switch, DPM-Solver++'s 2M variant and 3M coefficients where it stepped."""
    names = list(process.solvers)
    solver = names[0] if len(set(names)) == 1 else "switching"
    options: dict[str, Any] = {"solvers": names} if solver == "switching" else {}
    if "dpmpp" in names:
        options["solver_type"] = getattr(process.solver, "solver_type", "dpmsolver")  # SwitchingSolver: dpmsolver
        options["third_order"] = process.solver.third_order
    return solver, options


def cmd_search_schedule(args: argparse.Namespace) -> None:
    """``adaptstep search-schedule``: run a ``search:`` baseline's search for the env afresh and save it."""
    controller = parse_controller(args.controller)
    if not isinstance(controller, SearchedSchedule):
        raise SystemExit(f"--controller must be a search: baseline, got {args.controller!r}")
    env = gym.make(ENV_ID, **{**parse_settings(args.env_kwarg, "--env-kwarg"), **controller.env_overrides})
    try:
        arguments = controller.search_arguments(env.unwrapped)
    finally:
        env.close()
    result = searched_schedule(**arguments, stored=False)
    save_search(args.out, search_key(**arguments), result)
    print(f"wrote {args.out}: objective {result.objective:.4g} after {result.evaluations} schedules, "
          f"{result.seconds:.0f} s")
