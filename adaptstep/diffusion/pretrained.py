"""Pretrained models shipped with the package, their manifest and the command that rebuilds them.

The models: the digits denoiser, the digits rectified flow, the digit classifier (Fréchet features and
guidance reward) and a differently built held-out digit classifier (the evaluation verifier).

The files live in ``adaptstep/diffusion/pretrained/`` beside ``manifest.json``, which records for each
file the training function and its arguments, the data split, the final loss, the classifiers' test
accuracy, the training seconds, and two digests: ``sha256`` of the file (checked on every load) and
``weights_sha256`` of the tensors (torch.save files differ byte-wise between saves, the weights of a
reproducible rebuild do not); the torch version and thread count are recorded once for all files.

Rebuild all with the recorded settings (CPU, one thread), or only some files, merged into the existing
manifest (same torch version and thread count required)::

    python -m adaptstep.diffusion.pretrained --rebuild [--only FILE [FILE ...]] [--out DIR] [--overwrite]

Without ``--rebuild`` the command checks the shipped files against the manifest.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import json
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from adaptstep.diffusion.classifier import (
    DigitClassifier,
    HeldOutDigitClassifier,
    accuracy,
    load_classifier,
    load_heldout_classifier,
    save_classifier,
    train_digit_classifier,
    train_heldout_classifier,
)
from adaptstep.diffusion.data import DIGITS_HELD_OUT, SPLIT_SEED, load_dataset
from adaptstep.diffusion.networks import NeuralDenoiser
from adaptstep.diffusion.training import load_denoiser, train_denoiser
from adaptstep.io import atomic_write_text

if TYPE_CHECKING:
    from adaptstep.flow.rectified import FlowNet

PRETRAINED_DIR = Path(__file__).with_name("pretrained")
COMMAND = "python -m adaptstep.diffusion.pretrained"
MANIFEST_NAME = "manifest.json"
DENOISER_FILES = {"digits": "digits/denoiser.pt"}
FLOW_FILES = {"digits": "digits/flow.pt"}
CLASSIFIER_FILE = "classifier.pt"
HELDOUT_CLASSIFIER_FILE = "heldout_classifier.pt"
FILES = (CLASSIFIER_FILE, *DENOISER_FILES.values(), HELDOUT_CLASSIFIER_FILE, *FLOW_FILES.values())
THREADS = 1
DENOISER_SETTINGS = {
    "digits": dict(data="digits", steps=24_000, batch_size=256, lr=1e-3, schedule="linear", seed=0,
                   width=128, depth=3, ema_decay=0.999),
}
FLOW_SETTINGS = {
    "digits": dict(data="digits", steps=30_000, batch_size=256, lr=1e-3, seed=0, width=128, depth=3,
                   ema_decay=0.999),
}
CLASSIFIER_SETTINGS = dict(seed=0, steps=600, lr=3e-3, weight_decay=1e-4, input_noise=0.1)
HELDOUT_CLASSIFIER_SETTINGS = dict(seed=1, steps=2000, batch_size=128, lr=2e-3, weight_decay=1e-4, input_noise=0.1)
SPLIT = f"sklearn digits minus {DIGITS_HELD_OUT} held-out images (permutation seed {SPLIT_SEED})"


def file_sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def weights_sha256(model: nn.Module) -> str:
    """SHA-256 over the state dict's names and float32 CPU tensor bytes, in name order."""
    digest = hashlib.sha256()
    for name, value in sorted(model.state_dict().items()):
        digest.update(name.encode())
        digest.update(value.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()


def load_manifest(folder: str | Path = PRETRAINED_DIR) -> dict:
    path = Path(folder) / MANIFEST_NAME
    if not path.is_file():
        raise FileNotFoundError(f"no {MANIFEST_NAME} in {folder}; run {COMMAND} --rebuild")
    return json.loads(path.read_text())


def _verified(relative: str, folder: Path) -> Path:
    """The path of ``relative`` in ``folder`` after checking its sha256 against the manifest."""
    path = folder / relative
    expected = load_manifest(folder)["files"][relative]["sha256"]
    if not path.is_file() or file_sha256(path) != expected:
        raise RuntimeError(f"{path} is missing or does not match the sha256 in {folder / MANIFEST_NAME}; "
                           f"rebuild with {COMMAND} --rebuild --overwrite")
    return path


def pretrained_denoiser(name: str = "digits", device: str | torch.device = "auto",
                        folder: str | Path = PRETRAINED_DIR) -> NeuralDenoiser:
    """The shipped ``NeuralDenoiser`` ``name`` (one of ``DENOISER_FILES``), in eval mode."""
    if name not in DENOISER_FILES:
        raise ValueError(f"name must be one of {sorted(DENOISER_FILES)}, got {name!r}")
    return load_denoiser(_verified(DENOISER_FILES[name], Path(folder)), device=device)


def pretrained_flow(name: str = "digits", device: str | torch.device = "auto",
                    folder: str | Path = PRETRAINED_DIR) -> FlowNet:
    """The shipped rectified-flow ``FlowNet`` ``name`` (one of ``FLOW_FILES``), in eval mode."""
    if name not in FLOW_FILES:
        raise ValueError(f"name must be one of {sorted(FLOW_FILES)}, got {name!r}")
    from adaptstep.flow.rectified import load_flow  # here, not above: adaptstep.flow imports adaptstep.diffusion

    return load_flow(_verified(FLOW_FILES[name], Path(folder)), device=device)


def pretrained_classifier(device: str | torch.device = "auto", folder: str | Path = PRETRAINED_DIR) -> DigitClassifier:
    """The shipped ``DigitClassifier`` (features for the digits Fréchet distance), in eval mode."""
    return load_classifier(_verified(CLASSIFIER_FILE, Path(folder)), device=device)


def pretrained_heldout_classifier(device: str | torch.device = "auto",
                                  folder: str | Path = PRETRAINED_DIR) -> HeldOutDigitClassifier:
    """The shipped ``HeldOutDigitClassifier`` (the evaluation verifier, not used for guidance), in eval mode."""
    return load_heldout_classifier(_verified(HELDOUT_CLASSIFIER_FILE, Path(folder)), device=device)


def _record(path: Path, model: nn.Module, **fields) -> dict:
    digests = {"sha256": file_sha256(path), "weights_sha256": weights_sha256(model)}
    return {**fields, **digests, "bytes": path.stat().st_size}


def _build_classifier(relative: str, kind: str, train: Callable[..., nn.Module], settings: dict, out: Path) -> dict:
    start = time.perf_counter()
    model = train(device="cpu", **settings)
    seconds = time.perf_counter() - start
    path = save_classifier(model, out / relative)
    train_x, train_labels = load_dataset("digits", split="train")
    test_x, test_labels = load_dataset("digits", split="held-out")
    with torch.no_grad():
        train_loss = nn.functional.cross_entropy(model(train_x), train_labels).item()
    return _record(
        path, model, kind=kind, function=f"{train.__module__}.{train.__name__}",
        arguments={**settings, "device": "cpu"}, data="digits", train_split=SPLIT,
        test_split=f"the {DIGITS_HELD_OUT} held-out images", final_loss=train_loss,
        train_accuracy=accuracy(model, train_x, train_labels), test_accuracy=accuracy(model, test_x, test_labels),
        seconds=seconds,
    )


def _build_denoiser(name: str, progress: bool, out: Path) -> dict:
    settings = DENOISER_SETTINGS[name]
    path = train_denoiser(out=out / Path(DENOISER_FILES[name]).parent, device="cpu", progress=progress,
                          overwrite=True, **settings)
    model = load_denoiser(path, device="cpu")
    metadata = model.metadata
    return _record(
        path, model, kind="denoiser", name=name, function="adaptstep.diffusion.training.train_denoiser",
        arguments={**settings, "device": "cpu"}, train_split=SPLIT, train_size=metadata["train_size"],
        final_loss=metadata["final_loss"], seconds=metadata["seconds"],
    )


def _build_flow(name: str, progress: bool, out: Path) -> dict:
    from adaptstep.flow.rectified import save_flow, train_flow  # see pretrained_flow

    settings = FLOW_SETTINGS[name]
    model = train_flow(device="cpu", progress=progress, **settings)
    path = save_flow(model, out / FLOW_FILES[name])
    metadata = model.metadata
    return _record(
        path, model, kind="flow", name=name, function="adaptstep.flow.rectified.train_flow",
        arguments={**settings, "device": "cpu"}, train_split=SPLIT, train_size=metadata["train_size"],
        time_sampling=metadata["time_sampling"], final_loss=metadata["final_loss"], seconds=metadata["seconds"],
    )


def _builders(progress: bool) -> dict[str, Callable[[Path], dict]]:
    """For each file of ``FILES``, the function that trains it into a folder and returns its manifest record,
    with the settings as they are now."""
    builders = {
        CLASSIFIER_FILE: functools.partial(_build_classifier, CLASSIFIER_FILE, "classifier", train_digit_classifier,
                                           CLASSIFIER_SETTINGS),
        HELDOUT_CLASSIFIER_FILE: functools.partial(_build_classifier, HELDOUT_CLASSIFIER_FILE, "heldout-classifier",
                                                   train_heldout_classifier, HELDOUT_CLASSIFIER_SETTINGS),
    }
    for name, relative in DENOISER_FILES.items():
        builders[relative] = functools.partial(_build_denoiser, name, progress)
    for name, relative in FLOW_FILES.items():
        builders[relative] = functools.partial(_build_flow, name, progress)
    return builders


def rebuild(out: str | Path = PRETRAINED_DIR, overwrite: bool = False, progress: bool = True,
            only: Iterable[str] | None = None) -> dict:
    """Retrain the shipped models on the CPU with the recorded settings and write the files and
    ``manifest.json`` (last) to ``out``, each atomically; returns the manifest.

    ``only=None`` rebuilds every file of ``FILES`` and writes a new manifest. ``only`` naming some of
    ``FILES`` rebuilds just those and merges their records into the manifest already in ``out``, whose
    other entries stay as they are; that manifest must record this torch version and thread count.
    Existing model files (and, without ``only``, the manifest) are replaced only with ``overwrite=True``.
    """
    out = Path(out)
    names = list(FILES) if only is None else list(dict.fromkeys(only))
    unknown = [name for name in names if name not in FILES]
    if unknown or not names:
        raise ValueError(f"only must name one or more of {list(FILES)}, got {names!r}")
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
    builders = _builders(progress)
    for name in FILES:
        if name in names:
            manifest["files"][name] = builders[name](out)
    atomic_write_text(out / MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")
    return manifest


def verify(folder: str | Path = PRETRAINED_DIR) -> list[str]:
    """One line per file of the manifest in ``folder``: its name and whether its sha256 matches."""
    folder = Path(folder)
    lines = []
    for relative, record in load_manifest(folder)["files"].items():
        path = folder / relative
        ok = path.is_file() and file_sha256(path) == record["sha256"]
        lines.append(f"{relative}: {'ok' if ok else 'MISMATCH'}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n")[0])
    parser.add_argument("--rebuild", action="store_true", help="retrain the models with the recorded settings")
    parser.add_argument("--out", type=Path, default=PRETRAINED_DIR, help="folder to write (default: the package's)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing files")
    parser.add_argument("--only", nargs="+", choices=FILES, metavar="FILE",
                        help=f"with --rebuild: rebuild just these of {', '.join(FILES)} and merge them into the "
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
    for relative in args.only or FILES:
        record = manifest["files"][relative]
        print(f"{args.out / relative}: final_loss={record['final_loss']:.4f}"
              + (f" test_accuracy={record['test_accuracy']:.4f}" if "test_accuracy" in record else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
