"""``adaptstep zoo list | check | add | build | rebuild``: the model zoo from the command line."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from adaptstep.core.settings import parse_settings
from adaptstep.zoo.store import add_files, add_run, build, kinds, load_manifest, rebuild, verified_folder


def cmd_list(args: argparse.Namespace) -> None:
    """Print each entry: name, kind, env (and task), algorithm, size, training time and the benchmark row it backs."""
    entries = load_manifest()
    print(f"{'name':30s} {'kind':16s} {'env (task)':46s} {'algo':19s} {'KB':>6s} {'train s':>8s}  backs")
    for name, record in entries.items():
        size = sum(item["bytes"] for item in record["files"].values()) / 1024
        seconds = record.get("train_seconds")
        env = record["env"] + (f" ({record['task']})" if record.get("task") else "")
        print(f"{name:30s} {record['kind']:16s} {env:46s} {record.get('algo') or '-':19s} {size:6.0f} "
              f"{'-' if seconds is None else f'{seconds:.0f}':>8s}  {record.get('backs') or '-'}")


def cmd_check(args: argparse.Namespace) -> None:
    """Check every entry's files against their sha256; exit 1 when one fails."""
    failed = 0
    for name in load_manifest():
        try:
            verified_folder(name)
            print(f"{name}: ok")
        except ValueError as error:
            failed += 1
            print(f"{name}: {error}")
    if failed:
        sys.exit(1)


def cmd_add(args: argparse.Namespace) -> None:
    """Add a finished training run folder as an agent entry, or checkpoint files with the commands that made them."""
    if len(args.path) == 1 and Path(args.path[0]).is_dir():
        if args.command:
            raise SystemExit("--command is for checkpoint files; a run folder's command is read from its run.yaml")
        overrides = parse_settings(args.override, "--override")
        record = add_run(args.name, args.path[0], backs=args.backs, overrides=overrides, overwrite=args.overwrite)
    else:
        if args.override:
            raise SystemExit("--override is for agents (a run folder); a checkpoint is passed to its env by path")
        record = add_files(args.name, args.path, args.command, backs=args.backs, overwrite=args.overwrite)
    print(f"added zoo:{args.name} ({record['kind']}, {record['env']}, {record['algo']}, trained "
          f"{record['train_seconds']} s): {', '.join(record['files'])}")


def cmd_build(args: argparse.Namespace) -> None:
    """Run the given commands and record their output files as a new entry."""
    record = {"kind": args.kind, "env": args.env, "algo": args.algo, "file": args.file[0],
              "overrides": parse_settings(args.override, "--override"), "backs": args.backs,
              "commands": args.command}
    record = build(args.name, record, args.file, overwrite=args.overwrite)
    print(f"built zoo:{args.name} in {record['train_seconds']:.0f} s: {', '.join(record['files'])}")


def cmd_rebuild(args: argparse.Namespace) -> None:
    """Retrain an entry with its recorded commands."""
    record = rebuild(args.name)
    print(f"rebuilt zoo:{args.name} in {record['train_seconds']:.0f} s")


def add_zoo_parser(commands: argparse._SubParsersAction) -> None:
    """Add ``adaptstep zoo`` and its subcommands."""
    zoo = commands.add_parser("zoo", help="the shipped model zoo (zoo:NAME specs)")
    sub = zoo.add_subparsers(dest="zoo_command", required=True)
    sub.add_parser("list", help="name, kind, env, algorithm and benchmark row of each entry").set_defaults(
        func=cmd_list)
    sub.add_parser("check", help="check every file against its sha256").set_defaults(func=cmd_check)
    add = sub.add_parser("add", help="add a finished `adaptstep train` run folder as an agent, or existing checkpoint "
                                     "files (planner, dual system, Diffusion Policy, ...) with --command")
    add.add_argument("name")
    add.add_argument("path", nargs="+", help="a run folder, or the checkpoint file (first) and files kept beside it")
    add.add_argument("--command", action="append", default=[],
                     help="checkpoints: an adaptstep command line that made them, writing each as {out}/<its name> "
                          "(scratch files into {work}); repeatable, run in order by `zoo rebuild`")
    add.add_argument("--backs", default="", help="the benchmark row it backs, e.g. 'BENCHMARKS.md sampler: ...'")
    add.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                     help="an env kwarg every zoo:NAME spec adds, e.g. backend=rebound-ias15")
    add.add_argument("--overwrite", action="store_true", help="replace an entry of that name")
    add.set_defaults(func=cmd_add)
    make = sub.add_parser("build", help="run adaptstep commands that write into {out} (scratch files into {work}) "
                                        "and record the files they made as an entry")
    make.add_argument("name")
    make.add_argument("--kind", required=True, choices=kinds())
    make.add_argument("--env", required=True, help="the env id it serves")
    make.add_argument("--algo", help="the agent's algorithm (agents only)")
    make.add_argument("--command", action="append", required=True,
                      help="an adaptstep command line with {out} and {work}; repeatable, run in order")
    make.add_argument("--file", action="append", required=True,
                      help="a file under {out} to keep, the first the one zoo:NAME names; repeatable")
    make.add_argument("--backs", default="", help="the benchmark row it backs")
    make.add_argument("--override", action="append", default=[], metavar="KEY=VALUE",
                      help="an env kwarg every zoo:NAME spec adds")
    make.add_argument("--overwrite", action="store_true", help="replace an entry of that name")
    make.set_defaults(func=cmd_build)
    again = sub.add_parser("rebuild", help="retrain an entry with the commands recorded in the manifest")
    again.add_argument("name")
    again.set_defaults(func=cmd_rebuild)
