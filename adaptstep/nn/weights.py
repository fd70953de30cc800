"""The pretrained weights shipped with the package: one folder, one manifest, sha256-checked loading, rebuilding.

The files live in ``adaptstep/nn/pretrained/`` beside ``manifest.json``, which records for each file the
``builder`` that trains it (``"module:function"``, a function of the family that owns the model), the training
function and its arguments, the data split, the final loss, the classifiers' test accuracy, the training seconds,
and two digests: ``sha256`` of the file (checked on every load) and ``weights_sha256`` of the tensors (torch.save
files differ byte-wise between saves, the weights of a reproducible rebuild do not); the torch version and thread
count are recorded once for all files. The shipped manifest is also the list of the files and of their builders:
this module names no family.

A builder ``build(relative, out, progress) -> dict`` trains its model with the settings recorded in its own module,
writes it to ``out / relative`` and returns ``record(path, model, **fields)``.

Rebuild all with the recorded settings (CPU, one thread), or only some files, merged into the existing
manifest (same torch version and thread count required)::

    python -m adaptstep.nn.weights --rebuild [--only FILE [FILE ...]] [--out DIR] [--overwrite]

Without ``--rebuild`` the command checks the shipped files against the manifest.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import sys
from collections.abc import Callable, Iterable
from pathlib import Path

import torch
from torch import nn

from adaptstep.io import atomic_write_text

WEIGHTS_DIR = Path(__file__).with_name("pretrained")
COMMAND = "python -m adaptstep.nn.weights"
MANIFEST_NAME = "manifest.json"
THREADS = 1


def file_sha256(path: str | Path) -> str:
    """The SHA-256 hex digest of the file at ``path``."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def weights_sha256(model: nn.Module) -> str:
    """SHA-256 over the state dict's names and float32 CPU tensor bytes, in name order."""
    digest = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def load_manifest(folder: str | Path = WEIGHTS_DIR) -> dict:
    """The ``manifest.json`` in ``folder``.

    Raises:
        FileNotFoundError: If ``folder`` has no manifest.
    """
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no {MANIFEST_NAME} in {folder}; run {COMMAND} --rebuild")
    return json.loads(path.read_text())


def shipped_files() -> tuple[str, ...]:
    """The files of the package's manifest, in its order."""
    return tuple(load_manifest(WEIGHTS_DIR)["files"])


def verified_path(relative: str, folder: str | Path = WEIGHTS_DIR) -> Path:
    """The path of ``relative`` in ``folder`` after checking its sha256 against the manifest there."""
    folder = Path(folder)
    path = folder / relative
    expected = load_manifest(folder)["files"][relative]["sha256"]
    if not path.is_file() or file_sha256(path) != expected:
        raise RuntimeError(f"{path} is missing or does not match the sha256 in {folder / MANIFEST_NAME}; "
                           f"rebuild with {COMMAND} --rebuild --overwrite")
    return path


def record(path: Path, model: nn.Module, **fields) -> dict:
    """A manifest record: ``fields``, then the digests and the size of the file at ``path`` holding ``model``."""
    digests = {"sha256": file_sha256(path), "weights_sha256": weights_sha256(model)}
    return {**fields, **digests, "bytes": path.stat().st_size}


def builder(relative: str) -> Callable[[str, Path, bool], dict]:
    """The function the package's manifest names as the builder of ``relative``."""
    spec = load_manifest(WEIGHTS_DIR)["files"][relative]["builder"]
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


def rebuild(out: str | Path = WEIGHTS_DIR, overwrite: bool = False, progress: bool = True,
            only: Iterable[str] | None = None) -> dict:
    """Retrain the shipped models on the CPU with the recorded settings and write them to ``out``.

    The files and ``manifest.json`` (last) are each written atomically.

    Args:
        out: The folder to write.
        overwrite: Replace existing model files (and, without ``only``, the manifest); else they are an error.
        progress: Passed to the builders (show their progress).
        only: None rebuilds every file of ``shipped_files()`` and writes a new manifest; names of some of them
            rebuild just those and merge their records into the manifest already in ``out``, whose other entries
            stay as they are (it must record this torch version and thread count).

    Returns:
        The manifest written.

    Raises:
        ValueError: If ``only`` names no shipped file or an unknown one, or the manifest in ``out`` records another
            torch version or thread count.
        FileExistsError: If a target exists and ``overwrite`` is False.
    """
    out = Path(out)
    files = shipped_files()
    names = list(files) if only is None else list(dict.fromkeys(only))
    unknown = [name for name in names if name not in files]
    if unknown or not names:
        raise ValueError(f"only must name one or more of {list(files)}, got {names!r}")
    if only is None:
        manifest = {"command": f"{COMMAND} --rebuild", "torch": torch.__version__,
                    "threads": torch.get_num_threads(), "files": {}}
    else:
        manifest = load_manifest(out)
        current = {"torch": torch.__version__, "threads": torch.get_num_threads()}
        recorded = {key: manifest.get(key) for key in current}
        if recorded != current:
            raise ValueError(f"the manifest in {out} records {recorded}, this run has {current}; "
                             "rebuild all files (without only) to keep the manifest true")
    targets = [out / name for name in names] + ([out / MANIFEST_NAME] if only is None else [])
    existing = [str(path) for path in targets if path.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{', '.join(existing)} exist; pass overwrite=True (--overwrite) to replace them")
    shipped = load_manifest(WEIGHTS_DIR)["files"]
    for name in files:
        if name in names:
            manifest["files"][name] = {"builder": shipped[name]["builder"], **builder(name)(name, out, progress)}
    atomic_write_text(out / MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")
    return manifest


def verify(folder: str | Path = WEIGHTS_DIR) -> list[str]:
    """One line per file of the manifest in ``folder``: its name and whether its sha256 matches."""
    folder = Path(folder)
    lines = []
    for relative, entry in load_manifest(folder)["files"].items():
        path = folder / relative
        ok = path.is_file() and file_sha256(path) == entry["sha256"]
        lines.append(f"{relative}: {'ok' if ok else 'MISMATCH'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    """``python -m adaptstep.nn.weights``: check the shipped files, or rebuild them; returns the exit status."""
    files = shipped_files()
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n")[0])
    parser.add_argument("--rebuild", action="store_true", help="retrain the models with the recorded settings")
    parser.add_argument("--out", type=Path, default=WEIGHTS_DIR, help="folder to write (default: the package's)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    parser.add_argument("--only", nargs="+", choices=files, metavar="FILE",
                        help=f"with --rebuild: rebuild just these of {', '.join(files)} and merge them into the "
                             "existing manifest")
    args = parser.parse_args(argv)
    if args.only and not args.rebuild:
        parser.error("--only needs --rebuild")
    try:
        if not args.rebuild:
            lines = verify(args.out)
            print("\n".join(lines))
            return 0 if all(line.endswith(": ok") for line in lines) else 1
        torch.set_num_threads(THREADS)
        manifest = rebuild(args.out, args.overwrite, only=args.only)
    except (FileExistsError, FileNotFoundError, ValueError) as error:
        parser.error(str(error))
    for relative in args.only or files:
        entry = manifest["files"][relative]
        print(f"{args.out / relative}: final_loss={entry['final_loss']:.4f}"
              + (f" test_accuracy={entry['test_accuracy']:.4f}" if "test_accuracy" in entry else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
