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
from adaptstep.core.executors import add_executor_options, executor_from_args, use_executor
from adaptstep.core.registry import env_class, env_ids, families, family_of, load_object
from adaptstep.core.settings import parse_settings, seed_argument
from adaptstep.evaluation import evaluate, summarize
from adaptstep.plotting import plot_pareto
from adaptstep.specs import env_task_spec
from adaptstep.zoo.commands import add_zoo_parser


def cmd_envs(args: argparse.Namespace) -> None:
    """``adaptstep envs``: every registered env id with its class's one-line summary."""
    for env_id in env_ids():
        doc = (env_class(env_id).__doc__ or "").strip().splitlines()
        print(f"{env_id:32s} {doc[0] if doc else ''}")


def cmd_train(args: argparse.Namespace) -> None:
    """``adaptstep train``: train an agent; a run folder made for it is removed again if nothing was written."""
    env_kwargs = parse_settings(args.env_kwarg, "--env-kwarg")
    family_of(args.env_id)  # one line for an unknown env id, before a folder is made for it
    if args.resume and args.out and Path(args.out) != Path(args.resume):
        raise ValueError("--resume DIR continues the run in DIR; leave out --out or give the same folder")
    made = not (args.out or args.resume)
    out = Path(args.resume or args.out) if not made else next_run_folder(args.env_id, args.algo)
    try:
        path = train(args.env_id, args.algo, out, config=args.config, timesteps=args.timesteps, seed=args.seed,
                     env_kwargs=env_kwargs, progress_bar=not args.no_progress, overwrite=args.overwrite,
                     resume=bool(args.resume), eval_freq=args.eval_freq, eval_episodes=args.eval_episodes)
    except ValueError:
        if made and {child.name for child in out.iterdir()} <= {".lock"}:  # nothing written: no empty run
            shutil.rmtree(out)
        raise
    print(f"saved {path} (TensorBoard logs in {out / 'tb'})")


def cmd_optimize(args: argparse.Namespace) -> None:
    """``adaptstep optimize``: an Optuna study over the algorithm's search space; writes the best entry."""
    from adaptstep.agents.optimize import optimize  # Optuna is an optional dependency

    family_of(args.env_id)
    runs = Path(args.runs or f"runs/optimize/{args.env_id.split('/')[-1]}-{args.algo}")
    out = Path(args.out or runs / "best.yml")
    with use_executor(executor_from_args(args)) as executor:
        study = optimize(args.env_id, args.algo, args.trials, args.timesteps, runs, out, config=args.config,
                         storage=args.storage, study_name=args.study_name, eval_freq=args.eval_freq,
                         eval_episodes=args.eval_episodes, seed=args.seed, startup_trials=args.startup_trials,
                         executor=executor)
    pruned = sum(trial.state.name == "PRUNED" for trial in study.trials)
    print(f"{len(study.trials)} trials ({pruned} pruned); best trial {study.best_trial.number}: "
          f"{study.best_value:.6g}; wrote {out}")


def seed_list(text: str) -> list[int]:
    """``A..B`` (inclusive) or ``S,S,...`` into seeds; an ``argparse`` type."""
    try:
        if ".." in text:
            first, last = (int(part) for part in text.split(".."))
            seeds = list(range(first, last + 1))
        else:
            seeds = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be A..B or a comma list of ints, got {text!r}") from None
    if not seeds or min(seeds) < 0:
        raise argparse.ArgumentTypeError(f"must name one or more seeds >= 0, got {text!r}")
    return seeds


def cmd_sweep(args: argparse.Namespace) -> None:
    """``adaptstep sweep``: train K seeds of one config on the executor, score each on held-out episodes."""
    from adaptstep.agents.sweep import aggregate, sweep  # loads torch and SB3, as train does

    env_kwargs = parse_settings(args.env_kwarg, "--env-kwarg")
    out = Path(args.out or f"runs/sweep/{args.env_id.split('/')[-1]}-{args.algo}")
    with use_executor(executor_from_args(args)) as executor:
        table = sweep(args.env_id, args.algo, args.seeds, out, config=args.config, timesteps=args.timesteps,
                      env_kwargs=env_kwargs, episodes=args.episodes, eval_seed=args.seed, executor=executor)
    metric = env_class(args.env_id).metrics[0].name
    summary = aggregate(table["score"].to_numpy())
    table.to_csv(out / "sweep.csv", index=False)
    print(table.to_string(index=False))
    print(f"{metric} (median over {args.episodes} held-out episodes per seed) over {summary['seeds']} seeds: mean "
          f"{summary['mean']:.4g} (95% bootstrap CI {summary['ci_low']:.4g}–{summary['ci_high']:.4g}), IQM "
          f"{summary['iqm']:.4g}; wrote {out / 'sweep.csv'}")


def cmd_enjoy(args: argparse.Namespace) -> None:
    """``adaptstep enjoy``: play and render one episode, optionally as a video."""
    from adaptstep.enjoy import enjoy  # loads imageio only when watching

    row = enjoy(args.env_id, args.controller, seed=args.seed, env_kwargs=parse_settings(args.env_kwarg, "--env-kwarg"),
                video=args.video, fps=args.fps, progress=not args.no_progress)
    print(f"{args.controller}: {row['steps']} steps, cost {row['cost']:.4g}, return {row['return']:.4g}"
          + (f"; wrote {args.video} ({row['frames']} frames)" if args.video else ""))


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
        with use_executor(executor_from_args(args)):
            table = evaluate(args.env_id, controllers, episodes=args.episodes, seed=args.seed,
                             env_kwargs=env_kwargs, progress=not args.no_progress, out=args.out, resume=args.resume)
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
    train_parser.add_argument("--resume", metavar="DIR",
                              help="continue the run in DIR from its newest complete checkpoint (--timesteps: the "
                                   "total to reach)")
    train_parser.add_argument("--eval-freq", type=int, default=0,
                              help="steps between evaluations on held-out seeds that keep best_model.zip (0: none)")
    train_parser.add_argument("--eval-episodes", type=int, default=5, help="episodes per held-out evaluation")
    train_parser.add_argument("--no-progress", action="store_true")
    train_parser.set_defaults(func=cmd_train)

    search = sub.add_parser("optimize", help="search hyperparameters with Optuna (TPE sampler, median pruner)")
    search.add_argument("env_id")
    search.add_argument("--algo", required=True, choices=["ppo", "sac", "dqn"])
    search.add_argument("--trials", type=int, default=10, help="trials this process runs")
    search.add_argument("--timesteps", type=int, required=True, help="training steps per trial")
    search.add_argument("--storage", help="Optuna storage URL (sqlite:///study.db, postgresql://...) shared by "
                                          "processes or machines; default: in memory")
    search.add_argument("--study-name", help="the study's name in --storage (default <env>-<algo>)")
    search.add_argument("--config", help="hyperparameter YAML the trials start from (default agents/<algo>.yml)")
    search.add_argument("--eval-freq", type=int, help="steps between pruning evaluations (default timesteps / 4)")
    search.add_argument("--eval-episodes", type=int, default=5, help="held-out episodes per evaluation")
    search.add_argument("--startup-trials", type=int, default=5,
                        help="trials before TPE models the space and the median pruner prunes")
    search.add_argument("--seed", type=seed_argument, default=0)
    search.add_argument("--runs", help="folder of the trials' runs (default runs/optimize/<env>-<algo>)")
    search.add_argument("--out", help="YAML file for the best entry (default <runs>/best.yml)")
    add_executor_options(search)
    search.set_defaults(func=cmd_optimize)

    seeds = sub.add_parser("sweep", help="train K seeds of one config and report mean, bootstrap CI and IQM")
    seeds.add_argument("env_id")
    seeds.add_argument("--algo", required=True, choices=["ppo", "sac", "dqn"])
    seeds.add_argument("--seeds", type=seed_list, required=True, help="training seeds: A..B or S,S,...")
    seeds.add_argument("--config", help="hyperparameter YAML (default agents/<algo>.yml)")
    seeds.add_argument("--timesteps", type=int, help="override n_timesteps of the config")
    seeds.add_argument("--env-kwarg", action="append", default=[], metavar="KEY=VALUE")
    seeds.add_argument("--episodes", type=int, default=10, help="held-out episodes per seed")
    seeds.add_argument("--seed", type=seed_argument, default=1000, help="first held-out episode seed")
    seeds.add_argument("--out", help="folder of the seeds' runs (default runs/sweep/<env>-<algo>)")
    add_executor_options(seeds)
    seeds.set_defaults(func=cmd_sweep)

    watch = sub.add_parser("enjoy", help="play and render one episode of a controller (MP4 or GIF with --video)")
    watch.add_argument("env_id")
    watch.add_argument("--controller", required=True, metavar="SPEC", help="a baseline, a model.zip or zoo:NAME")
    watch.add_argument("--seed", type=seed_argument, default=0, help="the episode's reset seed")
    watch.add_argument("--env-kwarg", action="append", default=[], metavar="KEY=VALUE")
    watch.add_argument("--video", help="an .mp4 or .gif file to write")
    watch.add_argument("--fps", type=int, help="video frames per second (default the env's render_fps)")
    watch.add_argument("--no-progress", action="store_true")
    watch.set_defaults(func=cmd_enjoy)

    evaluate_parser = sub.add_parser("evaluate", help="run controllers on the same seeds and compare them")
    evaluate_parser.add_argument("env_id")
    evaluate_parser.add_argument("--controller", action="append", default=[], metavar="SPEC",
                          help="a saved model (.zip), a shipped one (zoo:NAME) or a baseline such as fixed:eta=0.01; repeatable")
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
    add_executor_options(evaluate_parser)
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
    add_zoo_parser(sub)
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
