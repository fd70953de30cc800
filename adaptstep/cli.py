"""``adaptstep`` command line: envs, train, evaluate, bench. Every command calls the same library functions."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _settings(items: Sequence[str], what: str) -> dict[str, Any]:
    """Repeated ``KEY=VALUE`` options, one each, into a dict; VALUE is YAML, so lists such as ``[1, 2]`` work."""
    from adaptstep.specs import parse_value

    settings: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"{what} must be KEY=VALUE, got {item!r}")
        settings[key.strip()] = parse_value(value)
    return settings


def int_pair(text: str) -> tuple[int, int]:
    """``"15,25"`` -> (15, 25), for options given as LO,HI."""
    try:
        low, high = (int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two integers LO,HI such as 15,25, got {text!r}") from None
    return low, high


def cmd_envs(args: argparse.Namespace) -> None:
    from adaptstep.envs import ENV_IDS
    from adaptstep.evaluation import env_class

    for env_id in ENV_IDS:
        doc = (env_class(env_id).__doc__ or "").strip().splitlines()
        print(f"{env_id:32s} {doc[0] if doc else ''}")


def cmd_train(args: argparse.Namespace) -> None:
    from adaptstep.agents.training import train
    from adaptstep.specs import parse_env_kwargs

    out = args.out or Path("runs") / f"{args.env_id.split('/')[-1]}-{args.algo}-seed{args.seed}"
    path = train(args.env_id, args.algo, out, config=args.config, timesteps=args.timesteps, seed=args.seed,
                 env_kwargs=parse_env_kwargs(args.env_kwarg), progress_bar=not args.no_progress,
                 overwrite=args.overwrite)
    print(f"saved {path} (TensorBoard logs in {Path(out) / 'tb'})")


def cmd_train_denoiser(args: argparse.Namespace) -> None:
    from adaptstep.diffusion.training import train_denoiser

    path = train_denoiser(args.data, args.out, steps=args.steps, batch_size=args.batch_size, schedule=args.schedule,
                          seed=args.seed, device=args.device, progress=not args.no_progress, overwrite=args.overwrite)
    print(f"saved {path}")


def cmd_train_planner(args: argparse.Namespace) -> None:
    import torch

    from adaptstep.planning.train import train_planner

    torch.set_num_threads(args.threads)
    out = args.out or Path("runs") / "planners" / f"{args.planner}-{args.task}.pt"
    path = train_planner(args.planner, args.data, args.task, out, horizon=args.horizon, steps=args.steps,
                         batch_size=args.batch_size, lr=args.lr, dim=args.dim, seed=args.seed, device=args.device,
                         value_steps=args.value_steps, overwrite=args.overwrite, progress=not args.no_progress)
    print(f"saved {path}")


def cmd_evaluate(args: argparse.Namespace) -> None:
    from adaptstep.evaluation import evaluate
    from adaptstep.io import atomic_path
    from adaptstep.specs import parse_env_kwargs, task_spec

    controllers = list(args.controller)
    env_kwargs = parse_env_kwargs(args.env_kwarg)
    if args.baselines:
        spec = task_spec(args.env_id)
        controllers += spec["baselines"]
        env_kwargs = {**spec["kwargs"], **env_kwargs}
    if not controllers:
        raise SystemExit("error: name at least one --controller, or pass --baselines")
    table = evaluate(args.env_id, controllers, episodes=args.episodes, seed=args.seed, env_kwargs=env_kwargs,
                     progress=not args.no_progress)
    print_summary(table)
    if args.out:
        with atomic_path(args.out) as temporary:
            table.to_csv(temporary, index=False)
        print(f"wrote {args.out}")
    if args.plot:
        from adaptstep.evaluation import env_class
        from adaptstep.plotting import plot_pareto

        plot_pareto(table, args.plot, title=f"{args.env_id}: {args.episodes} seeds from {args.seed}",
                    cost_unit=getattr(env_class(args.env_id), "cost_unit", ""))
        print(f"wrote {args.plot}")


def cmd_export_schedule(args: argparse.Namespace) -> None:
    import math

    import gymnasium as gym

    from adaptstep.agents.controllers import parse_controller
    from adaptstep.diffusion.export import export_schedule, save_schedule
    from adaptstep.evaluation import run_episode
    from adaptstep.specs import parse_env_kwargs

    env_id = "adaptstep/DiffusionSampler-v0"
    controller = parse_controller(args.controller)
    env_kwargs = {**parse_env_kwargs(args.env_kwarg), **controller.env_overrides}
    env = gym.make(env_id, **env_kwargs)
    try:
        row = run_episode(env, controller, args.seed)
        sampler = env.unwrapped
        process = sampler.process  # the finished episode: its times and orders are the env's info["times"], ["orders"]
        error = row["error"] if math.isfinite(row["error"]) else None
        schedule = export_schedule(
            process.times, process.orders, process.schedule, nfe=row["cost"], model=sampler.model,
            source=args.controller, solver_options={"solver_type": process.solver.solver_type,
                                                    "third_order": process.solver.third_order},
            metadata={"env_id": env_id, "env_kwargs": env_kwargs, "seed": args.seed, "error": error})
    finally:
        env.close()
    save_schedule(args.out, schedule, overwrite=args.overwrite)
    print(f"wrote {args.out}: {schedule.steps} steps, NFE {schedule.nfe}, endpoint RMSE {row['error']:.3g}")


def _locomotion_dataset(args: argparse.Namespace):
    """Roll out the SAC checkpoint in ``--policy-dir`` closest to the level's target return, training SAC there
    first (``--policy-steps``) when it holds no log yet."""
    from adaptstep.planning.locomotion_data import DATASETS, LOG_NAME, make_locomotion_dataset, pick_checkpoint, \
        train_behaviour_policy

    log = Path(args.policy_dir) / LOG_NAME
    if not log.is_file():
        train_behaviour_policy(steps=args.policy_steps, seed=args.seed, out_dir=args.policy_dir,
                               eval_every=min(args.policy_eval_every, args.policy_steps),
                               stop_return=DATASETS[args.name], progress=not args.no_progress)
    policy = pick_checkpoint(log, DATASETS[args.name])
    print(f"rolling out {policy}")
    return make_locomotion_dataset(args.name, policy, args.transitions, seed=args.seed, progress=not args.no_progress)


def cmd_train_robot(args: argparse.Namespace) -> None:
    import torch

    from adaptstep.policies.train import train_robot_policy

    torch.set_num_threads(args.threads)
    out = args.out or Path("runs") / "robot" / f"{args.policy}.pt"
    path = train_robot_policy(args.policy, args.demos, out, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                              seed=args.seed, device=args.device, video_model=args.video_model,
                              video_steps=args.video_steps, video_lr=args.video_lr,
                              config=_settings(args.config, "--config"),
                              video_config=_settings(args.video_config, "--video-config"), init=args.init,
                              overwrite=args.overwrite, progress=not args.no_progress)
    print(f"saved {path}")


def _robot_demos(args: argparse.Namespace, out: Path) -> None:
    from adaptstep.policies.demos import make_demos, save_demos

    demos = make_demos(args.name.removesuffix("-demos"), args.episodes, args.image_size, seed=args.seed,
                       progress=not args.no_progress, random_start=args.random_start, jump_again=args.jump_again,
                       elbow=args.elbow, reaction_delay=args.reaction_delay)
    jump_again = "" if args.jump_again is None else " --jump-again {},{}".format(*args.jump_again)
    demos.metadata["command"] = (f"adaptstep data make {args.name} --episodes {args.episodes} --image-size "
                                 f"{args.image_size} --seed {args.seed} --random-start {args.random_start}"
                                 f"{jump_again} --elbow {args.elbow} --reaction-delay {args.reaction_delay}")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_demos(demos, out)
    print(f"wrote {out}: {len(demos.episode_ends)} episodes, {len(demos)} steps, expert success "
          f"{demos.success.mean():.2f}")


def cmd_data_dagger(args: argparse.Namespace) -> None:
    import torch

    from adaptstep.policies.dagger import make_dagger_demos
    from adaptstep.policies.demos import save_demos
    from adaptstep.policies.train import load_robot_policy

    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    torch.set_num_threads(args.threads)
    refresh = [int(k) for k in args.refresh.split(",")]
    demos = make_dagger_demos(load_robot_policy(args.policy, device=args.device), args.task, args.episodes,
                              seed=args.seed, refresh_every=refresh, jump_again=args.jump_again, elbow=args.elbow,
                              progress=not args.no_progress)
    jump_again = "" if args.jump_again is None else " --jump-again {},{}".format(*args.jump_again)
    demos.metadata["command"] = (f"adaptstep data dagger --policy {args.policy} --task {args.task} --episodes "
                                 f"{args.episodes} --refresh {args.refresh} --seed {args.seed}{jump_again} "
                                 f"--elbow {args.elbow} --out {args.out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_demos(demos, out)
    print(f"wrote {out}: {len(demos.episode_ends)} episodes, {len(demos)} steps labelled by the expert, policy "
          f"success {demos.success.mean():.2f}")


def cmd_data_make(args: argparse.Namespace) -> None:
    import numpy as np

    from adaptstep.planning.datasets import write_d4rl, write_minari
    from adaptstep.planning.maze_data import make_maze_dataset

    out = Path(args.out or f"data/{args.name}.hdf5")
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    if args.name.endswith("-demos"):
        return _robot_demos(args, out)
    if args.name.startswith("maze2d"):
        dataset = make_maze_dataset(args.name, args.transitions, seed=args.seed, progress=not args.no_progress)
    else:
        dataset = _locomotion_dataset(args)
    dataset.metadata["command"] = f"adaptstep data make {args.name} --transitions {args.transitions} --seed {args.seed}"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_d4rl(dataset, out, overwrite=args.overwrite)
    returns = [dataset.rewards[episode].sum() for episode in dataset.episodes()]
    goals = f", {int(dataset.rewards.sum())} goals reached" if "goal" in dataset.infos else ""
    print(f"wrote {out}: {len(dataset)} transitions, {len(returns)} episodes, mean episode return "
          f"{np.mean(returns):.1f}{goals}")
    if args.minari_id:
        write_minari(dataset, args.minari_id, root=args.minari_root, task=args.name, author="adaptstep",
                     algorithm_name=dataset.metadata["controller"], description=f"adaptstep data make {args.name}")
        print(f"wrote Minari dataset {args.minari_id}" + (f" under {args.minari_root}" if args.minari_root else ""))


def print_summary(table) -> None:
    import pandas as pd

    from adaptstep.evaluation import summarize

    with pd.option_context("display.width", 200, "display.max_columns", 30, "display.float_format", "{:.3g}".format):
        print(summarize(table).drop(columns=["wall_time_median"]).to_string())


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adaptstep", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    sub.add_parser("envs", help="list the registered envs").set_defaults(func=cmd_envs)

    train = sub.add_parser("train", help="train a stable-baselines3 agent")
    train.add_argument("env_id")
    train.add_argument("--algo", required=True, choices=["ppo", "sac", "dqn"])
    train.add_argument("--config", help="hyperparameter YAML (default agents/<algo>.yml)")
    train.add_argument("--timesteps", type=int, help="override n_timesteps of the config")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--out", help="output folder (default runs/<env>-<algo>-seed<S>)")
    train.add_argument("--env-kwarg", action="append", default=[], metavar="KEY=VALUE")
    train.add_argument("--overwrite", action="store_true", help="replace an existing model in --out")
    train.add_argument("--no-progress", action="store_true")
    train.set_defaults(func=cmd_train)

    evaluate = sub.add_parser("evaluate", help="run controllers on the same seeds and compare them")
    evaluate.add_argument("env_id")
    evaluate.add_argument("--controller", action="append", default=[], metavar="SPEC",
                          help="a saved model (.zip) or a baseline such as fixed:eta=0.01; repeatable")
    evaluate.add_argument("--baselines", action="store_true", help="add the baselines of the env's spec in envs/")
    evaluate.add_argument("--episodes", type=int, default=10)
    evaluate.add_argument("--seed", type=int, default=0, help="first seed; episodes use seed, seed+1, ...")
    evaluate.add_argument("--env-kwarg", action="append", default=[], metavar="KEY=VALUE")
    evaluate.add_argument("--out", help="CSV file, one row per episode")
    evaluate.add_argument("--plot", help="PNG file: Pareto plot of quality vs cost")
    evaluate.add_argument("--no-progress", action="store_true")
    evaluate.set_defaults(func=cmd_evaluate)

    export = sub.add_parser("export-schedule", help="run one diffusion-sampler episode and write its schedule as JSON")
    export.add_argument("--controller", required=True, metavar="SPEC",
                        help="a saved model (.zip) or a baseline such as schedule:logsnr_uniform,solver=dpmpp2m")
    export.add_argument("--env-kwarg", action="append", default=[], metavar="KEY=VALUE",
                        help="adaptstep/DiffusionSampler-v0 kwargs, e.g. model=gmm-2d or nfe=10")
    export.add_argument("--seed", type=int, default=0, help="the episode's reset seed (its noise)")
    export.add_argument("--out", required=True, help="JSON file (see adaptstep.diffusion.export)")
    export.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    export.set_defaults(func=cmd_export_schedule)

    denoiser = sub.add_parser("train-denoiser", help="train a small neural denoiser on a dataset shipped with a package")
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

    planner = sub.add_parser("train-planner", help="train a diffusion planner on a D4RL-format dataset")
    planner.add_argument("planner", choices=["diffuser", "trajectory-diffuser"])
    planner.add_argument("--data", required=True, help="D4RL-format HDF5 file (adaptstep data make ...)")
    planner.add_argument("--task", required=True, help="maze2d-umaze|medium|large or hopper-medium")
    planner.add_argument("--out", help="checkpoint (default runs/planners/<planner>-<task>.pt)")
    planner.add_argument("--horizon", type=int, default=32)
    planner.add_argument("--steps", type=int, default=8000)
    planner.add_argument("--batch-size", type=int, default=32)
    planner.add_argument("--lr", type=float, default=4e-4)
    planner.add_argument("--dim", type=int, default=32, help="the temporal U-Net's base width")
    planner.add_argument("--value-steps", type=int, default=None,
                         help="Diffuser on a return task: value-function steps for guidance (default --steps; 0: none)")
    planner.add_argument("--seed", type=int, default=0)
    planner.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    planner.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    planner.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    planner.add_argument("--no-progress", action="store_true")
    planner.set_defaults(func=cmd_train_planner)

    robot = sub.add_parser("train-robot", help="train a robot policy on demonstrations (adaptstep data make *-demos)")
    robot.add_argument("policy", choices=["diffusion-policy", "dual-system"])
    robot.add_argument("--demos", required=True, action="append",
                       help="demonstrations HDF5 file (adaptstep data make reacher-demos); repeat it to train on the "
                            "episodes of several, e.g. the expert's and adaptstep data dagger's")
    robot.add_argument("--init", help="dual-system: warm-start from this trained dual system (its video model too)")
    robot.add_argument("--out", help="checkpoint (default runs/robot/<policy>.pt)")
    robot.add_argument("--steps", type=int, default=4000)
    robot.add_argument("--batch-size", type=int, default=64)
    robot.add_argument("--lr", type=float, default=3e-4)
    robot.add_argument("--video-model", help="dual-system: a trained video model (default: train one first)")
    robot.add_argument("--video-steps", type=int, default=3000, help="dual-system: video-model training steps")
    robot.add_argument("--video-lr", type=float, help="dual-system: video-model learning rate (default --lr)")
    robot.add_argument("--config", action="append", default=[], metavar="KEY=VALUE",
                       help="a policy config field (DiffusionPolicyConfig / DualSystemConfig), e.g. history=16")
    robot.add_argument("--video-config", action="append", default=[], metavar="KEY=VALUE",
                       help="dual-system: a VideoModelConfig field of the video model it trains, e.g. width=64")
    robot.add_argument("--seed", type=int, default=0)
    robot.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    robot.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    robot.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    robot.add_argument("--no-progress", action="store_true")
    robot.set_defaults(func=cmd_train_robot)

    data = sub.add_parser("data", help="offline-RL datasets and robot demonstrations")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    make = data_commands.add_parser("make", help="make a D4RL-format dataset (and optionally a Minari one), or robot "
                                                 "demonstrations (*-demos)")
    make.add_argument("name", choices=["maze2d-umaze", "maze2d-medium", "maze2d-large", "hopper-medium",
                                       "hopper-expert", "reacher-demos", "reacher-moving-demos",
                                       "reacher-drifting-demos", "reacher-appearing-demos"])
    make.add_argument("--transitions", type=int, default=1_000_000, help="D4RL's sets hold 1M (default)")
    make.add_argument("--policy-dir", default="runs/hopper-sac",
                      help="hopper: SAC checkpoints and log.json (trained there first if it has no log)")
    make.add_argument("--policy-steps", type=int, default=1_000_000,
                      help="hopper: SAC training steps at most (it stops once a checkpoint reaches the level)")
    make.add_argument("--policy-eval-every", type=int, default=10_000,
                      help="hopper: SAC steps between checkpoints (Hopper's return can leap past the level in 10k)")
    make.add_argument("--episodes", type=int, default=200, help="*-demos: scripted-expert episodes")
    make.add_argument("--image-size", type=int, default=64, help="*-demos: camera image side in pixels")
    make.add_argument("--random-start", type=float, default=0.0,
                      help="*-demos: share of episodes whose arm starts at rest in a random pose")
    make.add_argument("--jump-again", type=int_pair, metavar="LO,HI",
                      help="reacher-moving-demos: the target jumps again LO-HI steps after each jump")
    make.add_argument("--elbow", default="nearest",
                      help="*-demos: the expert's elbow branch, nearest (default) or positive (always q1 >= 0)")
    make.add_argument("--reaction-delay", type=int, default=0, metavar="D",
                      help="reacher-moving-demos: the expert reacts to each jump 0-D steps late (default 0)")
    make.add_argument("--seed", type=int, default=0)
    make.add_argument("--out", help="HDF5 file (default data/<name>.hdf5)")
    make.add_argument("--minari-id", help="also write this Minari dataset id, e.g. adaptstep/maze2d-umaze-v0")
    make.add_argument("--minari-root", help="Minari datasets folder (default: MINARI_DATASETS_PATH or ~/.minari)")
    make.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    make.add_argument("--no-progress", action="store_true")
    make.set_defaults(func=cmd_data_make)

    dagger = data_commands.add_parser("dagger", help="robot episodes driven by a trained policy and labelled by the "
                                                     "scripted expert (DAgger), to train on beside the demos")
    dagger.add_argument("--policy", required=True, help="a trained robot policy checkpoint (adaptstep train-robot)")
    dagger.add_argument("--task", default="reacher-moving", choices=["reacher", "reacher-moving", "reacher-drifting",
                                                                      "reacher-appearing"])
    dagger.add_argument("--episodes", type=int, default=200)
    dagger.add_argument("--refresh", default="1", help="dual system: System-2 refresh periods k, cycled over episodes")
    dagger.add_argument("--jump-again", type=int_pair, metavar="LO,HI",
                        help="reacher-moving: the target jumps again LO-HI steps after each jump")
    dagger.add_argument("--elbow", default="positive", help="the expert's elbow branch, positive (default) or nearest")
    dagger.add_argument("--seed", type=int, default=10_000, help="first episode seed (default 10000)")
    dagger.add_argument("--out", required=True, help="HDF5 file to write")
    dagger.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    dagger.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    dagger.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    dagger.add_argument("--no-progress", action="store_true")
    dagger.set_defaults(func=cmd_data_dagger)

    from adaptstep.bench import add_bench_parsers

    add_bench_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.func(args)
    except (ValueError, FileNotFoundError, FileExistsError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
