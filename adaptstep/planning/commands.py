"""The offline family's commands.

``adaptstep train-planner`` and the datasets of ``adaptstep data make``: maze2d-*-v1 (D4RL's generation procedure,
``d4rl_maze``), maze2d-umaze|medium|large (adaptstep's earlier variant, ``maze_data``), hopper-*.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from adaptstep.core.settings import add_torch_run_options, seed_argument
from adaptstep.planning.d4rl_maze import D4RL_MAZES, make_d4rl_maze_dataset
from adaptstep.planning.datasets import write_d4rl, write_minari
from adaptstep.planning.locomotion_data import (
    LOCOMOTION_LEVELS,
    LOG_NAME,
    make_locomotion_dataset,
    pick_checkpoint,
    train_behaviour_policy,
)
from adaptstep.planning.maze_data import make_maze_dataset
from adaptstep.planning.planners import PLANNER_KINDS
from adaptstep.planning.train import train_planner


def add_commands(commands: argparse._SubParsersAction, data: argparse._SubParsersAction) -> None:
    """Add the family's subcommands to ``adaptstep`` (``data`` holds those under ``adaptstep data``)."""
    planner = commands.add_parser("train-planner", help="train a planner (diffusion) or a baseline policy (bc, iql) on a D4RL-format dataset")
    planner.add_argument("planner", choices=list(PLANNER_KINDS))
    planner.add_argument("--data", required=True, help="D4RL-format HDF5 file (adaptstep data make ...)")
    planner.add_argument("--task", required=True, help="maze2d-umaze|medium|large or hopper-medium")
    planner.add_argument("--out", help="checkpoint (default runs/planners/<planner>-<task>.pt)")
    planner.add_argument("--horizon", type=int, default=32)
    planner.add_argument("--steps", type=int, default=8000)
    planner.add_argument("--batch-size", type=int, default=None, help="default 32 (planners), 256 (bc, iql)")
    planner.add_argument("--lr", type=float, default=None, help="default 4e-4 (planners), 3e-4 (bc, iql)")
    planner.add_argument("--dim", type=int, default=32, help="the temporal U-Net's base width")
    planner.add_argument("--value-steps", type=int, default=None,
                         help="Diffuser on a return task: value-function steps for guidance (default --steps; 0: none)")
    planner.add_argument("--tau", type=float, default=0.7,
                         help="iql: the expectile (the paper's locomotion 0.7; antmaze 0.9)")
    planner.add_argument("--beta", type=float, default=3.0,
                         help="iql: the advantage weights' inverse temperature (locomotion 3; antmaze 10)")
    planner.add_argument("--state-only", action="store_true",
                         help="bc on a goal task: no goal input (D4RL's behaviour cloning; IQL's policy is state-only)")
    planner.add_argument("--goal-conditioned", action="store_true",
                         help="iql on a goal task: the data's goal as an input, the reward relabelled to it "
                              "(default: the paper's state-only IQL)")
    planner.add_argument("--save-every", type=int, default=0,
                         help="diffuser, trajectory-diffuser: also save the model every N steps as <out>-step<N>.pt "
                              "(a training curve)")
    planner.add_argument("--seed", type=seed_argument, default=0)
    add_torch_run_options(planner)
    planner.set_defaults(func=cmd_train_planner)


def add_dataset_options(make: argparse.ArgumentParser) -> None:
    """The options of ``adaptstep data make`` for this family's datasets."""
    make.add_argument("--transitions", type=int, default=1_000_000, help="D4RL's sets hold 1M (default)")
    make.add_argument("--policy-dir", default="runs/hopper-sac",
                      help="hopper: SAC checkpoints and log.json (trained there first if it has no log)")
    make.add_argument("--policy-steps", type=int, default=1_000_000,
                      help="hopper: SAC training steps at most (it stops once a checkpoint reaches the level)")
    make.add_argument("--policy-eval-every", type=int, default=10_000,
                      help="hopper: SAC steps between checkpoints (Hopper's return can leap past the level in 10k)")
    make.add_argument("--action-noise", type=float, default=0.0,
                      help="maze2d-*-v1: std of Gaussian action noise (D4RL's files: 0; its --noisy: 0.5)")
    make.add_argument("--minari-id", help="also write this Minari dataset id, e.g. adaptstep/maze2d-umaze-v0")
    make.add_argument("--minari-root", help="Minari datasets folder (default: MINARI_DATASETS_PATH or ~/.minari)")


def cmd_train_planner(args: argparse.Namespace) -> None:
    """``adaptstep train-planner``: train a planner on a dataset and save it (``train_planner``)."""
    torch.set_num_threads(args.threads)
    out = args.out or Path("runs") / "planners" / f"{args.planner}-{args.task}.pt"
    path = train_planner(args.planner, args.data, args.task, out, horizon=args.horizon, steps=args.steps,
                         batch_size=args.batch_size, lr=args.lr, dim=args.dim, seed=args.seed, device=args.device,
                         value_steps=args.value_steps, tau=args.tau, beta=args.beta, state_only=args.state_only,
                         goal_conditioned=args.goal_conditioned, save_every=args.save_every,
                         overwrite=args.overwrite, progress=not args.no_progress)
    print(f"saved {path}")


def _locomotion_dataset(args: argparse.Namespace):
    """Roll out the SAC checkpoint in ``--policy-dir`` closest to the level's target return, training SAC there
    first (``--policy-steps``) when it holds no log yet."""
    log = Path(args.policy_dir) / LOG_NAME
    if not log.is_file():
        train_behaviour_policy(steps=args.policy_steps, seed=args.seed, out_dir=args.policy_dir,
                               eval_every=min(args.policy_eval_every, args.policy_steps),
                               stop_return=LOCOMOTION_LEVELS[args.name], progress=not args.no_progress)
    policy = pick_checkpoint(log, LOCOMOTION_LEVELS[args.name])
    print(f"rolling out {policy}")
    return make_locomotion_dataset(args.name, policy, args.transitions, seed=args.seed, progress=not args.no_progress)


def make_dataset(args: argparse.Namespace, out: Path) -> None:
    """``adaptstep data make NAME`` for a maze2d or hopper dataset (D4RL's HDF5 layout, optionally Minari's)."""
    if args.name in D4RL_MAZES:
        dataset = make_d4rl_maze_dataset(args.name, args.transitions, seed=args.seed, noise=args.action_noise,
                                         progress=not args.no_progress)
    elif args.name.startswith("maze2d"):
        dataset = make_maze_dataset(args.name, args.transitions, seed=args.seed, progress=not args.no_progress)
    else:
        dataset = _locomotion_dataset(args)
    noise = f" --action-noise {args.action_noise}" if args.name in D4RL_MAZES and args.action_noise else ""
    dataset.metadata["command"] = (f"adaptstep data make {args.name} --transitions {args.transitions} "
                                   f"--seed {args.seed}{noise}")
    out.parent.mkdir(parents=True, exist_ok=True)
    write_d4rl(dataset, out, overwrite=args.overwrite)
    returns = [dataset.rewards[episode].sum() for episode in dataset.episodes()]
    goals = f", {int(dataset.rewards.sum())} rewarded steps" if "goal" in dataset.infos else ""
    print(f"wrote {out}: {len(dataset)} transitions, {len(returns)} episodes, mean episode return "
          f"{np.mean(returns):.1f}{goals}")
    if args.minari_id:
        write_minari(dataset, args.minari_id, root=args.minari_root, task=args.name, author="adaptstep",
                     algorithm_name=dataset.metadata["controller"], description=f"adaptstep data make {args.name}")
        print(f"wrote Minari dataset {args.minari_id}" + (f" under {args.minari_root}" if args.minari_root else ""))
