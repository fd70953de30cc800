"""The robot family's commands.

``adaptstep train-robot``, ``adaptstep data dagger`` and the demonstrations of ``adaptstep data make`` (*-demos).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from adaptstep.core.settings import add_torch_run_options, int_list, int_pair, parse_settings, seed_argument
from adaptstep.policies.dagger import make_dagger_demos
from adaptstep.policies.demos import make_demos, save_demos
from adaptstep.policies.train import load_robot_policy, train_robot_policy
from adaptstep.policies.task import is_reacher


def add_commands(commands: argparse._SubParsersAction, data: argparse._SubParsersAction) -> None:
    """Add the family's subcommands to ``adaptstep``.

    Args:
        commands: The subparsers of ``adaptstep``.
        data: The subparsers of ``adaptstep data``.
    """
    robot = commands.add_parser("train-robot",
                                help="train a robot policy on demonstrations (adaptstep data make *-demos)")
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
    robot.add_argument("--seed", type=seed_argument, default=0)
    add_torch_run_options(robot)
    robot.set_defaults(func=cmd_train_robot)

    dagger = data.add_parser("dagger", help="robot episodes driven by a trained policy and labelled by the "
                                                     "scripted expert (DAgger), to train on beside the demos")
    dagger.add_argument("--policy", required=True, help="a trained robot policy checkpoint (adaptstep train-robot)")
    dagger.add_argument("--task", default="reacher-moving", choices=["reacher", "reacher-moving", "reacher-drifting",
                                                                      "reacher-appearing"])
    dagger.add_argument("--episodes", type=int, default=200)
    dagger.add_argument("--refresh", default="1", type=int_list,
                        help="dual system: System-2 refresh periods k, cycled over episodes")
    dagger.add_argument("--jump-again", type=int_pair, metavar="LO,HI",
                        help="reacher-moving: the target jumps again LO-HI steps after each jump")
    dagger.add_argument("--elbow", default="positive", help="the expert's elbow branch, positive (default) or nearest")
    dagger.add_argument("--seed", type=seed_argument, default=10_000, help="first episode seed (default 10000)")
    dagger.add_argument("--out", required=True, help="HDF5 file to write")
    add_torch_run_options(dagger)
    dagger.set_defaults(func=cmd_data_dagger)


def add_dataset_options(make: argparse.ArgumentParser) -> None:
    """The options of ``adaptstep data make`` for robot demonstrations."""
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


def cmd_train_robot(args: argparse.Namespace) -> None:
    """``adaptstep train-robot``: train a Diffusion Policy or a dual system on demonstrations."""
    torch.set_num_threads(args.threads)
    out = args.out or Path("runs") / "robot" / f"{args.policy}.pt"
    path = train_robot_policy(args.policy, args.demos, out, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
                              seed=args.seed, device=args.device, video_model=args.video_model,
                              video_steps=args.video_steps, video_lr=args.video_lr,
                              config=parse_settings(args.config, "--config", split=False),
                              video_config=parse_settings(args.video_config, "--video-config", split=False),
                              init=args.init,
                              overwrite=args.overwrite, progress=not args.no_progress)
    print(f"saved {path}")


def make_dataset(args: argparse.Namespace, out: Path) -> None:
    """``adaptstep data make NAME-demos``: scripted-expert demonstrations (HDF5).

    Args:
        args: The parsed options.
        out: The HDF5 file to write.
    """
    demos = make_demos(args.name.removesuffix("-demos"), args.episodes, args.image_size, seed=args.seed,
                       progress=not args.no_progress, random_start=args.random_start, jump_again=args.jump_again,
                       elbow=args.elbow, reaction_delay=args.reaction_delay)
    jump_again = "" if args.jump_again is None else " --jump-again {},{}".format(*args.jump_again)
    reacher = (f" --random-start {args.random_start}{jump_again} --elbow {args.elbow} --reaction-delay "
               f"{args.reaction_delay}" if is_reacher(args.name.removesuffix("-demos")) else "")
    demos.metadata["command"] = (f"adaptstep data make {args.name} --episodes {args.episodes} --image-size "
                                 f"{args.image_size} --seed {args.seed}{reacher}")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_demos(demos, out)
    coverage = demos.metadata.get("final_coverage")
    print(f"wrote {out}: {len(demos.episode_ends)} episodes, {len(demos)} steps, expert success "
          f"{demos.success.mean():.2f}" + ("" if coverage is None else f", mean final coverage {np.mean(coverage):.3f}"))


def cmd_data_dagger(args: argparse.Namespace) -> None:
    """``adaptstep data dagger``: episodes driven by a trained policy and labelled by the scripted expert.

    Raises:
        FileExistsError: If ``--out`` exists and ``--overwrite`` is not given.
    """
    out = Path(args.out)
    if out.exists() and not args.overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    torch.set_num_threads(args.threads)
    demos = make_dagger_demos(load_robot_policy(args.policy, device=args.device), args.task, args.episodes,
                              seed=args.seed, refresh_every=args.refresh, jump_again=args.jump_again, elbow=args.elbow,
                              progress=not args.no_progress)
    jump_again = "" if args.jump_again is None else " --jump-again {},{}".format(*args.jump_again)
    demos.metadata["command"] = (f"adaptstep data dagger --policy {args.policy} --task {args.task} --episodes "
                                 f"{args.episodes} --refresh {','.join(map(str, args.refresh))} --seed {args.seed}"
                                 f"{jump_again} "
                                 f"--elbow {args.elbow} --out {args.out}")
    out.parent.mkdir(parents=True, exist_ok=True)
    save_demos(demos, out)
    print(f"wrote {out}: {len(demos.episode_ends)} episodes, {len(demos)} steps labelled by the expert, policy "
          f"success {demos.success.mean():.2f}")
