"""Pretrained models shipped with the package: the digits denoiser and the digit classifier.

The files live in ``adaptstep/diffusion/pretrained/`` beside ``manifest.json``, which records for each
file the training function and its arguments, the data split, the final loss, the classifier's test
accuracy, the torch version and thread count, and two digests: ``sha256`` of the file (checked on every
load) and ``weights_sha256`` of the tensors (torch.save files differ byte-wise between saves, the
weights of a reproducible rebuild do not).

Rebuild both with the recorded settings (CPU, one thread)::

    python -m adaptstep.diffusion.pretrained --rebuild [--out DIR] [--overwrite]

Without ``--rebuild`` the command checks the shipped files against the manifest.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import torch
from torch import nn

from adaptstep.diffusion.classifier import (
    DigitClassifier,
    accuracy,
    load_classifier,
    save_classifier,
    train_digit_classifier,
)
from adaptstep.diffusion.data import DIGITS_HELD_OUT, SPLIT_SEED, load_dataset
from adaptstep.diffusion.networks import NeuralDenoiser
from adaptstep.diffusion.training import load_denoiser, train_denoiser
from adaptstep.io import atomic_write_text

PRETRAINED_DIR = Path(__file__).with_name("pretrained")
COMMAND = "python -m adaptstep.diffusion.pretrained"
MANIFEST_NAME = "manifest.json"
DENOISER_FILES = {"digits": "digits/denoiser.pt"}
CLASSIFIER_FILE = "classifier.pt"
THREADS = 1
DENOISER_SETTINGS = {
    "digits": dict(data="digits", steps=24_000, batch_size=256, lr=1e-3, schedule="linear", seed=0,
                   width=128, depth=3, ema_decay=0.999),
}
CLASSIFIER_SETTINGS = dict(seed=0, steps=600, lr=3e-3, weight_decay=1e-4, input_noise=0.1)
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


def pretrained_classifier(device: str | torch.device = "auto", folder: str | Path = PRETRAINED_DIR) -> DigitClassifier:
    """The shipped ``DigitClassifier`` (features for the digits Fréchet distance), in eval mode."""
    return load_classifier(_verified(CLASSIFIER_FILE, Path(folder)), device=device)


def _record(path: Path, model: nn.Module, **fields) -> dict:
    digests = {"sha256": file_sha256(path), "weights_sha256": weights_sha256(model)}
    return {**fields, **digests, "bytes": path.stat().st_size}


def _build_classifier(out: Path) -> dict:
    start = time.perf_counter()
    model = train_digit_classifier(device="cpu", **CLASSIFIER_SETTINGS)
    seconds = time.perf_counter() - start
    path = save_classifier(model, out / CLASSIFIER_FILE)
    train_x, train_labels = load_dataset("digits", split="train")
    test_x, test_labels = load_dataset("digits", split="held-out")
    with torch.no_grad():
        train_loss = nn.functional.cross_entropy(model(train_x), train_labels).item()
    return _record(
        path, model, kind="classifier", function="adaptstep.diffusion.classifier.train_digit_classifier",
        arguments={**CLASSIFIER_SETTINGS, "device": "cpu"}, data="digits", train_split=SPLIT,
        test_split=f"the {DIGITS_HELD_OUT} held-out images", final_loss=train_loss,
        train_accuracy=accuracy(model, train_x, train_labels), test_accuracy=accuracy(model, test_x, test_labels),
        seconds=seconds,
    )


def _build_denoiser(name: str, out: Path, progress: bool) -> dict:
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


def rebuild(out: str | Path = PRETRAINED_DIR, overwrite: bool = False, progress: bool = True) -> dict:
    """Retrain every shipped model on the CPU with the recorded settings and write the files and
    ``manifest.json`` (last) to ``out``, each atomically. Existing files are replaced only with
    ``overwrite=True``. Returns the manifest."""
    out = Path(out)
    targets = [out / relative for relative in (*DENOISER_FILES.values(), CLASSIFIER_FILE, MANIFEST_NAME)]
    existing = [str(path) for path in targets if path.exists()]
    if existing and not overwrite:
        raise FileExistsError(f"{', '.join(existing)} exist; pass overwrite=True (--overwrite) to replace them")
    files = {CLASSIFIER_FILE: _build_classifier(out)}
    for name, relative in DENOISER_FILES.items():
        files[relative] = _build_denoiser(name, out, progress)
    manifest = {
        "command": f"{COMMAND} --rebuild",
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "files": files,
    }
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
    args = parser.parse_args(argv)
    try:
        if not args.rebuild:
            lines = verify(args.out)
            print("\n".join(lines))
            return 0 if all(line.endswith(": ok") for line in lines) else 1
        torch.set_num_threads(THREADS)
        manifest = rebuild(args.out, args.overwrite)
    except (FileExistsError, FileNotFoundError) as error:
        parser.error(str(error))
    for relative, record in manifest["files"].items():
        print(f"{args.out / relative}: final_loss={record['final_loss']:.4f}"
              + (f" test_accuracy={record['test_accuracy']:.4f}" if "test_accuracy" in record else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
