"""``adaptstep`` command line: envs, train, evaluate, data, bench and every family's own commands.

Every command calls the same library functions as Python does; the families add theirs through the registry
(``adaptstep.core.registry``), so this module names none of them.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

import gymnasium as gym
import yaml

from adaptstep.agents.training import next_run_folder, train
from adaptstep.bench import add_bench_parsers
from adaptstep.core.registry import env_class, env_ids, families, family_of, load_object
from adaptstep.core.settings import parse_settings, seed_argument
from adaptstep.evaluation import evaluate, summarize
from adaptstep.plotting import plot_pareto
from adaptstep.specs import env_task_spec


def cmd_envs(args: argparse.Namespace) -> None:
    """``adaptstep envs``: every registered env id with its class's one-line summary."""
    for env_id in env_ids():
        doc = (env_class(env_id).__doc__ or "").strip().splitlines()
        print(f"{env_id:32s} {doc[0] if doc else ''}")


def cmd_train(args: argparse.Namespace) -> None:
    """``adaptstep train``: train an agent; a run folder made for it is removed again if nothing was written."""
    env_kwargs = parse_settings(args.env_kwarg, "--env-kwarg")
    family_of(args.env_id)  # one line for an unknown env id, before a folder is made for it
    out = Path(args.out) if args.out else next_run_folder(args.env_id, args.algo)
    try:
        path = train(args.env_id, args.algo, out, config=args.config, timesteps=args.timesteps, seed=args.seed,
                     env_kwargs=env_kwargs, progress_bar=not args.no_progress, overwrite=args.overwrite)
    except ValueError:
        if not args.out and {child.name for child in out.iterdir()} <= {".lock"}:  # nothing written: no empty run
            shutil.rmtree(out)
        raise
    print(f"saved {path} (TensorBoard logs in {out / 'tb'})")


def cmd_evaluate(args: argparse.Namespace) -> None:
    """``adaptstep evaluate``: run controllers (and the task spec's baselines) through the harness.

    Raises:
        SystemExit: If no controller is named.
        ValueError: If ``--resume`` is given without ``--out``.
    """
    controllers = list(args.controller)
    env_kwargs = parse_settings(args.env_kwarg, "--env-kwarg")
    if args.baselines:
        spec = env_task_spec(args.env_id)
        controllers += spec["baselines"]
        env_kwargs = {**spec["kwargs"], **env_kwargs}
    if not controllers:
        raise SystemExit("error: name at least one --controller, or pass --baselines")
    if args.resume and not args.out:
        raise ValueError("--resume needs --out, the CSV file of the run to continue")
    try:
        table = evaluate(args.env_id, controllers, episodes=args.episodes, seed=args.seed, env_kwargs=env_kwargs,
                         progress=not args.no_progress, out=args.out, resume=args.resume)
    except KeyboardInterrupt:
        if args.out:
            raise KeyboardInterrupt(f"every finished episode is in {args.out}; rerun with --resume to go on") from None
        raise
    print_summary(table)
    if args.out:
        print(f"wrote {args.out}")
    if args.plot:
        plot_pareto(table, args.plot, title=f"{args.env_id}: {args.episodes} seeds from {args.seed}",
                    cost_unit=env_class(args.env_id).cost_unit)
        print(f"wrote {args.plot}")


def cmd_data_make(args: argparse.Namespace) -> None:
    """``adaptstep data make NAME``: write a family's dataset.

    Raises:
        FileExistsError: If the output exists and ``--overwrite`` is not given.
    """
    out = Path(args.out or f"data/{args.name}.hdf5")
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    makers = {name: maker for family in families().values() for name, maker in family.datasets.items()}
    load_object(makers[args.name])(args, out)


def print_summary(table: pd.DataFrame) -> None:
    """Print the per-controller summary of a harness table."""
    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.3g}".format):
        print(summarize(table).drop(columns=["wall_time_median"]).to_string())


def build_parser() -> argparse.ArgumentParser:
    """The ``adaptstep`` parser, with every family's subcommands."""
    parser = argparse.ArgumentParser(prog="adaptstep", description=__doc__.splitlines()[0])
    parser.add_argument("--debug", action="store_true", help="show the full traceback of an error")
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("envs", help="list the registered envs").set_defaults(func=cmd_envs)

    train_parser = sub.add_parser("train", help="train a stable-baselines3 agent")
    train_parser.add_argument("env_id")
    train_parser.add_argument("--algo", required=True, choices=["ppo", "sac", "dqn"])
    train_parser.add_argument("--config", help="hyperparameter YAML (default agents/<algo>.yml)")
    train_parser.add_argument("--timesteps", type=int, help="override n_timesteps of the config")
    train_parser.add_argument("--seed", type=seed_argument, default=0)
    train_parser.add_argument("--out", help="output folder (default: a fresh runs/<env>-<algo>_N)")
    train_parser.add_argument("--env-kwarg", action="append", default=[], metavar="KEY=VALUE")
    train_parser.add_argument("--overwrite", action="store_true",
                              help="remove the run files already in --out (model, run.yaml, checkpoints, logs) first")
    train_parser.add_argument("--no-progress", action="store_true")
    train_parser.set_defaults(func=cmd_train)

    evaluate_parser = sub.add_parser("evaluate", help="run controllers on the same seeds and compare them")
    evaluate_parser.add_argument("env_id")
    evaluate_parser.add_argument("--controller", action="append", default=[], metavar="SPEC",
                          help="a saved model (.zip) or a baseline such as fixed:eta=0.01; repeatable")
    evaluate_parser.add_argument("--baselines", action="store_true",
                                 help="add the baselines of the env's spec in envs/")
    evaluate_parser.add_argument("--episodes", type=int, default=10)
    evaluate_parser.add_argument("--seed", type=seed_argument, default=0,
                                 help="first seed; episodes use seed, seed+1, ...")
    evaluate_parser.add_argument("--env-kwarg", action="append", default=[], metavar="KEY=VALUE")
    evaluate_parser.add_argument("--out", help="CSV file, one row per episode, appended as each episode ends")
    evaluate_parser.add_argument("--resume", action="store_true",
                                 help="keep the rows already in --out and skip their (controller, seed) pairs")
    evaluate_parser.add_argument("--plot", help="PNG file: Pareto plot of quality vs cost")
    evaluate_parser.add_argument("--no-progress", action="store_true")
    evaluate_parser.set_defaults(func=cmd_evaluate)

    data = sub.add_parser("data", help="offline-RL datasets and robot demonstrations")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    make = data_commands.add_parser("make", help="make a dataset (D4RL's HDF5 layout) or robot demonstrations")
    names = [name for family in families().values() for name in family.datasets]
    make.add_argument("name", choices=names)
    make.add_argument("--seed", type=seed_argument, default=0)
    make.add_argument("--out", help="HDF5 file (default data/<name>.hdf5)")
    make.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    make.add_argument("--no-progress", action="store_true")
    make.set_defaults(func=cmd_data_make)
    for family in families().values():
        if family.dataset_options:
            load_object(family.dataset_options)(make)
        if family.commands:
            load_object(family.commands)(sub, data_commands)

    add_bench_parsers(sub)
    return parser


USER_ERRORS = (ValueError, OSError, yaml.YAMLError, gym.error.Error)  # bad input or files: one line, exit 2


def main(argv: Sequence[str] | None = None) -> None:
    """Run the command.

    An error in the user's input or files is one line on stderr (exit 2), Ctrl-C one line (exit 130); ``--debug``
    shows the traceback instead.
    """
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except KeyboardInterrupt as interrupt:
        if args.debug:
            raise
        print(f"interrupted{': ' + str(interrupt) if str(interrupt) else ''}", file=sys.stderr)
        sys.exit(130)
    except USER_ERRORS as error:
        if args.debug:
            raise
        print(f"error: {one_line(error)} (--debug shows the traceback)", file=sys.stderr)
        sys.exit(2)


def one_line(error: BaseException) -> str:
    """The error's message on one line (an OSError's file name included)."""
    if isinstance(error, OSError) and error.filename and str(error.filename) not in str(error.strerror or ""):
        text = f"{error.strerror or error}: {error.filename}"
    else:
        text = str(error) or type(error).__name__
    return " ".join(text.split())


if __name__ == "__main__":
    main()
