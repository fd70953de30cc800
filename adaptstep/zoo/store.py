"""The model zoo's files: one manifest, sha256-checked lookup, ``zoo:NAME`` specs, adding and rebuilding entries.

Each entry of ``adaptstep/zoo/manifest.json`` is a folder ``adaptstep/zoo/NAME/`` and records its ``kind``
(``agent``, or a checkpoint kind a family declares: ``planner``, ``dual-system``, ``diffusion-policy``), ``env``, the
``task`` of a checkpoint, ``algo``, the ``file`` a ``zoo:NAME`` spec resolves to, the env
``overrides`` a spec adds (``backend=rebound-ias15``), the benchmark row it ``backs``, the shell ``commands`` that
made it (``{out}`` is the entry's folder, ``{work}`` a scratch folder), ``train_seconds`` (the commands' wall time for
an entry ``build`` made, the recorded training time for a run or checkpoint ``add_run``/``add_files`` added), and
every file's ``sha256`` and size. A file is checked against its sha256 each time an entry is resolved, like the pretrained
weights of ``adaptstep.nn.weights`` (whose ``file_sha256`` this module uses).
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from adaptstep.agents.controllers import RUN_FILE, VECNORMALIZE_FILE, run_record
from adaptstep.core.registry import checkpoint_kinds, load_object
from adaptstep.io import atomic_write_text, file_lock
from adaptstep.nn.weights import file_sha256

ZOO_DIR = Path(__file__).resolve().parent
MANIFEST = "manifest.json"
PREFIX = "zoo:"
AGENT_FILES = ("model.zip", RUN_FILE, VECNORMALIZE_FILE)


def load_manifest(folder: str | Path = ZOO_DIR) -> dict[str, dict[str, Any]]:
    """The zoo's entries by name (empty when ``folder`` has no manifest yet)."""
    path = Path(folder) / MANIFEST
    return json.loads(path.read_text())["entries"] if path.is_file() else {}


def entry(name: str, folder: str | Path = ZOO_DIR) -> dict[str, Any]:
    """The manifest entry ``name``.

    Raises:
        ValueError: If the zoo has no entry ``name``, listing the names it has.
    """
    entries = load_manifest(folder)
    if name not in entries:
        raise ValueError(f"zoo entry must be one of {sorted(entries)}, got {name!r}")
    return entries[name]


def rebuild_command(name: str) -> str:
    """The command that retrains entry ``name``."""
    return f"adaptstep zoo rebuild {name}"


def verified_folder(name: str, folder: str | Path = ZOO_DIR) -> Path:
    """The folder of entry ``name`` after checking each of its files against the manifest's sha256.

    Raises:
        ValueError: For an unknown name, or a missing or changed file (naming it and the rebuild command).
    """
    record = entry(name, folder)
    root = Path(folder) / name
    for relative, expected in record["files"].items():
        path = root / relative
        if not path.is_file() or file_sha256(path) != expected["sha256"]:
            raise ValueError(f"{path} is missing or does not match its sha256 in {Path(folder) / MANIFEST}; "
                             f"rebuild it with `{rebuild_command(name)}`")
    return root


def is_zoo_spec(text: Any) -> bool:
    """Whether ``text`` is a ``zoo:NAME`` spec."""
    return isinstance(text, str) and text.startswith(PREFIX)


def resolve(spec: str, folder: str | Path = ZOO_DIR) -> tuple[Path, dict[str, Any]]:
    """The checked file of ``zoo:NAME`` and the env overrides the entry records.

    Raises:
        ValueError: For a spec without the ``zoo:`` prefix, an unknown name or a file that fails its check.
    """
    if not is_zoo_spec(spec):
        raise ValueError(f"a zoo spec must be zoo:NAME, got {spec!r}")
    name = spec[len(PREFIX):]
    root = verified_folder(name, folder)
    record = entry(name, folder)
    return root / record["file"], dict(record.get("overrides") or {})


def resolve_agent(spec: str, folder: str | Path = ZOO_DIR) -> tuple[Path, dict[str, Any]]:
    """``resolve`` for a controller spec: the entry must be a trained agent.

    Raises:
        ValueError: As ``resolve``, or if the entry is a checkpoint an env loads (a planner, a dual system).
    """
    path, overrides = resolve(spec, folder)
    kind = entry(spec[len(PREFIX):], folder)["kind"]
    if kind != "agent":
        raise ValueError(f"controller {spec!r} is a {kind} checkpoint, not an agent; pass it to the env as a "
                         "checkpoint kwarg (--env-kwarg)")
    return path, overrides


def zoo_path(value: Any) -> Any:
    """``value`` with a ``zoo:NAME`` string replaced by the checked file it names (for checkpoint kwargs)."""
    return resolve(value)[0] if is_zoo_spec(value) else value


def _write_manifest(entries: Mapping[str, Any], folder: Path) -> None:
    atomic_write_text(folder / MANIFEST, json.dumps({"entries": dict(sorted(entries.items()))}, indent=2) + "\n")


def _digests(root: Path, files: list[str]) -> dict[str, dict[str, Any]]:
    return {relative: {"sha256": file_sha256(root / relative), "bytes": (root / relative).stat().st_size}
            for relative in files}


def _install(name: str, source: Path, files: list[str], record: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Copy ``files`` from ``source`` into ``folder/name`` (replacing it) and record them in the manifest."""
    missing = [relative for relative in files if not (source / relative).is_file()]
    if missing:
        raise ValueError(f"{source} lacks {missing}, which zoo entry {name!r} needs")
    folder.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=folder, prefix=f".{name}."))
    os.chmod(staging, 0o755)  # mkdtemp makes 0700; the package's folders are readable by all
    try:
        for relative in files:
            (staging / relative).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source / relative, staging / relative)
        record = {**record, "files": _digests(staging, files)}
        with file_lock(folder / MANIFEST):
            entries = load_manifest(folder)
            if (folder / name).exists():
                shutil.rmtree(folder / name)
            os.replace(staging, folder / name)
            entries[name] = record
            _write_manifest(entries, folder)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return record


def train_command(run: Mapping[str, Any], config: str | None = None) -> str:
    """The ``adaptstep train`` command that remakes the run ``run.yaml`` describes, into ``{out}``."""
    kwargs = " ".join(f"--env-kwarg {shlex.quote(f'{key}={_setting(value)}')}"
                      for key, value in (run.get("env_kwargs") or {}).items())
    parts = [f"adaptstep train {run['env_id']} --algo {run['algo']}", f"--config {config}" if config else "",
             f"--timesteps {run['timesteps']} --seed {run['seed']}", kwargs, "--out {out} --no-progress"]
    return " ".join(part for part in parts if part)


def run_commands(run: Mapping[str, Any], config: str | None = None) -> list[str]:
    """The commands that remake the run ``run.yaml`` describes: ``train_command``, or for a resumed run the training
    to the step it was resumed from and ``adaptstep train --resume {out}`` to its ``timesteps`` (its last
    resumption; earlier ones are not recorded in ``run.yaml``)."""
    resumed = run.get("resumed_from")
    if not resumed:
        return [train_command(run, config)]
    return [train_command({**run, "timesteps": resumed["steps"]}, config),
            f"adaptstep train {run['env_id']} --algo {run['algo']} --resume {{out}} --timesteps {run['timesteps']} "
            "--no-progress"]


def _setting(value: Any) -> str:
    """A value as ``parse_settings`` reads it back (YAML flow style for lists and mappings)."""
    if isinstance(value, (list, dict)):
        return yaml.safe_dump(value, default_flow_style=True).strip()
    return str(value)


def add_run(name: str, run_dir: str | Path, backs: str = "", overrides: Mapping[str, Any] | None = None,
            overwrite: bool = False, folder: str | Path = ZOO_DIR) -> dict[str, Any]:
    """Add the finished ``adaptstep train`` run in ``run_dir`` to the zoo as agent ``name``.

    Its hyperparameters are kept beside it as ``config.yml``, so ``adaptstep zoo rebuild NAME`` retrains it with
    exactly those.

    Args:
        name: The entry's name (``zoo:NAME``).
        run_dir: A folder holding ``model.zip`` and a complete ``run.yaml`` (``vecnormalize.pkl`` when normalised).
        backs: The benchmark row the agent backs (free text, e.g. ``BENCHMARKS.md threebody: runs/x/model.zip``).
        overrides: Env kwargs a ``zoo:NAME`` spec adds (e.g. ``{"backend": "rebound-ias15"}``).
        overwrite: Replace an existing entry of that name.
        folder: The zoo folder.

    Raises:
        ValueError: For a bad name, an existing entry without ``overwrite``, or a run that is missing or incomplete.
    """
    folder, run_dir = Path(folder), Path(run_dir)
    _check_name(name, folder, overwrite)
    run_file, run = run_record(run_dir / "model.zip")
    if not run.get("complete"):
        raise ValueError(f"{run_file} does not say complete: true; add a finished run")
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch)
        files = [relative for relative in AGENT_FILES if (run_dir / relative).is_file()]
        for relative in files:
            shutil.copyfile(run_dir / relative, source / relative)
        atomic_write_text(source / "config.yml", yaml.safe_dump({run["env_id"]: run["hyperparameters"]},
                                                                 sort_keys=False))
        record = {"kind": "agent", "env": run["env_id"], "algo": run["algo"], "file": "model.zip",
                  "overrides": dict(overrides or {}), "backs": backs,
                  "commands": run_commands(run, config="{work}/config.yml"),
                  "inputs": {"config.yml": "{work}/config.yml"},
                  "train_seconds": run.get("train_seconds")}
        return _install(name, source, [*files, "config.yml"], record, folder)


def kinds() -> list[str]:
    """The entry kinds: ``agent`` and every checkpoint kind a family declares (``Family.checkpoints``)."""
    return ["agent", *checkpoint_kinds()]


def describe_checkpoint(path: str | Path) -> dict[str, Any]:
    """The kind, env, task, algorithm and training seconds of a checkpoint file, from the family whose kind loads it.

    Raises:
        ValueError: If no family's checkpoint kind loads ``path``, with each kind's reason.
    """
    reasons = []
    for kind, family in checkpoint_kinds().items():
        try:
            described = load_object(family.checkpoints[kind])(path)
        except (ValueError, KeyError, FileNotFoundError) as error:
            reasons.append(f"{kind}: {error}")
            continue
        return {"kind": kind, "env": next(iter(family.envs)), **described}
    raise ValueError(f"{path} must be a checkpoint of one of {list(checkpoint_kinds())}; " + "; ".join(reasons))


def add_files(name: str, files: list[str | Path], commands: list[str], backs: str = "", overwrite: bool = False,
              folder: str | Path = ZOO_DIR) -> dict[str, Any]:
    """Add checkpoint files trained outside ``zoo build`` (a planner, a dual system, a Diffusion Policy, ...).

    The first file is the one ``zoo:NAME`` names; its family's ``describe`` loads it and gives the entry's kind, env,
    task, algorithm and ``train_seconds`` (the training time its metadata records). ``commands`` must remake every
    file as ``{out}/<its name>``, so ``adaptstep zoo rebuild NAME`` can retrain the entry.

    Args:
        name: The entry's name (``zoo:NAME``).
        files: The checkpoint first, then any file beside it that the entry keeps.
        commands: The ``adaptstep`` command lines that made them, ``{out}`` the entry's folder and ``{work}`` scratch.
        backs: The benchmark row it backs.
        overwrite: Replace an existing entry of that name.
        folder: The zoo folder.

    Raises:
        ValueError: For a bad name, an existing entry without ``overwrite``, a missing or unloadable file, two files
            of one name, no commands, a command not starting with ``adaptstep``, or a file no command writes.
    """
    folder, paths = Path(folder), [Path(path) for path in files]
    _check_name(name, folder, overwrite)
    missing = [str(path) for path in paths if not path.is_file()]
    if not paths or missing:
        raise ValueError(f"files must be existing checkpoint files, got {missing or 'none'}")
    names = [path.name for path in paths]
    if len(set(names)) != len(names):
        raise ValueError(f"files must have distinct names, got {names}")
    if not commands or any(shlex.split(command)[:1] != ["adaptstep"] for command in commands):
        raise ValueError(f"commands must be adaptstep command lines that write into {{out}}, got {commands}")
    unwritten = [file for file in names if not any(f"{{out}}/{file}" in command for command in commands)]
    if unwritten:
        raise ValueError(f"the commands must write {['{out}/' + file for file in unwritten]}, so that "
                         f"`{rebuild_command(name)}` remakes them")
    record = {**describe_checkpoint(paths[0]), "file": names[0], "overrides": {}, "backs": backs,
              "commands": list(commands)}
    with tempfile.TemporaryDirectory() as scratch:
        for path in paths:
            shutil.copyfile(path, Path(scratch) / path.name)
        return _install(name, Path(scratch), names, record, folder)


def _check_name(name: str, folder: Path, overwrite: bool) -> None:
    if not name or not all(character.isalnum() or character in "-_." for character in name) or name[0] == ".":
        raise ValueError(f"name must be letters, digits, '-', '_' or '.', got {name!r}")
    if name in load_manifest(folder) and not overwrite:
        raise ValueError(f"zoo entry {name!r} exists; pass --overwrite to replace it")


def build(name: str, record: Mapping[str, Any], files: list[str], overwrite: bool = False,
          folder: str | Path = ZOO_DIR, log: Any = None) -> dict[str, Any]:
    """Run an entry's ``commands`` in a scratch folder and install the ``files`` they write into ``{out}``.

    Args:
        name: The entry's name.
        record: Its manifest fields without ``files`` and ``train_seconds`` (``commands`` among them).
        files: The files under ``{out}`` that make the entry.
        overwrite: Replace an existing entry of that name.
        folder: The zoo folder.
        log: A text file receiving the commands' output (None: inherited).

    Raises:
        ValueError: For a bad name or kind, an existing entry without ``overwrite``, or a command that fails.
    """
    folder = Path(folder)
    _check_name(name, folder, overwrite)
    if record.get("kind") not in kinds():
        raise ValueError(f"kind must be one of {kinds()}, got {record.get('kind')!r}")
    with tempfile.TemporaryDirectory() as scratch:
        out, work = Path(scratch) / "out", Path(scratch) / "work"
        out.mkdir()
        work.mkdir()
        for relative, target in (record.get("inputs") or {}).items():  # files an entry keeps to rebuild itself
            shutil.copyfile(folder / name / relative, target.format(out=out, work=work))
        started = time.perf_counter()
        for command in record["commands"]:
            argv = shlex.split(command.format(out=out, work=work))
            if argv[0] != "adaptstep":
                raise ValueError(f"zoo commands must start with adaptstep, got {command!r}")
            done = subprocess.run([sys.executable, "-m", "adaptstep.cli", *argv[1:]], stdout=log, stderr=log)
            if done.returncode != 0:
                raise ValueError(f"zoo entry {name!r}: `{command}` failed with exit status {done.returncode}")
        seconds = round(time.perf_counter() - started, 1)
        for relative in record.get("inputs") or {}:
            shutil.copyfile(folder / name / relative, out / relative)
        return _install(name, out, files, {**record, "train_seconds": seconds}, folder)


def rebuild(name: str, folder: str | Path = ZOO_DIR, log: Any = None) -> dict[str, Any]:
    """Retrain entry ``name`` with its recorded commands and replace its files (and hashes)."""
    record = dict(entry(name, folder))
    files = list(record.pop("files"))
    record.pop("train_seconds", None)
    return build(name, record, files, overwrite=True, folder=folder, log=log)
