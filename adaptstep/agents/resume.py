"""Continue a training run from its newest complete checkpoint, as rl-baselines3-zoo's ``--trained-agent`` does.

A run folder holds ``model.zip`` (written at the end of training or on Ctrl-C, its step in ``run.yaml``:
``num_timesteps`` or ``interrupted_at``) and
``checkpoints/model_<N>_steps.zip``, each with its normaliser statistics (``vecnormalize.pkl``,
``model_vecnormalize_<N>_steps.pkl``) when the run normalises and, for off-policy algorithms that save it
(``save_replay_buffer: true``), its replay buffer (``replay_buffer.pkl``, ``model_replay_buffer_<N>_steps.pkl``).
A checkpoint is complete when every file it needs is there; the newest complete one is resumed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adaptstep.agents.controllers import RUN_FILE, VECNORMALIZE_FILE

REPLAY_BUFFER_FILE = "replay_buffer.pkl"  # beside model.zip for off-policy runs that save their buffer


@dataclass(frozen=True)
class Checkpoint:
    """One saved state of a run.

    Attributes:
        steps: The environment steps it was saved at.
        model: The model file.
        normalizer: Its VecNormalize statistics, None when the run does not normalise.
        replay_buffer: Its replay buffer, None when none was saved.
    """

    steps: int
    model: Path
    normalizer: Path | None
    replay_buffer: Path | None


def checkpoints(out: Path, run: dict[str, Any], normalize: bool) -> list[Checkpoint]:
    """Every complete checkpoint of the run in ``out``, oldest first.

    Args:
        out: The run folder.
        run: Its ``run.yaml``.
        normalize: Whether the run normalises (a checkpoint then needs its statistics).
    """
    found = []
    folder = out / "checkpoints"
    for path in folder.glob("model_*_steps.zip") if folder.is_dir() else ():
        match = re.fullmatch(r"model_(\d+)_steps\.zip", path.name)
        if match:
            steps = int(match.group(1))
            found.append(_complete(steps, path, folder / f"model_vecnormalize_{steps}_steps.pkl",
                                   folder / f"model_replay_buffer_{steps}_steps.pkl", normalize))
    steps = run.get("interrupted_at")
    if steps is None and run.get("complete"):  # the steps it ran (whole rollouts), else the steps it was asked
        steps = run.get("num_timesteps", run.get("timesteps"))
    if steps is not None and (out / "model.zip").is_file():
        found.append(_complete(int(steps), out / "model.zip", out / VECNORMALIZE_FILE, out / REPLAY_BUFFER_FILE,
                               normalize))
    return sorted((checkpoint for checkpoint in found if checkpoint is not None), key=lambda item: item.steps)


def _complete(steps: int, model: Path, normalizer: Path, replay_buffer: Path, normalize: bool) -> Checkpoint | None:
    if normalize and not normalizer.is_file():
        return None
    return Checkpoint(steps, model, normalizer if normalize else None,
                      replay_buffer if replay_buffer.is_file() else None)


def newest_checkpoint(out: Path, run: dict[str, Any], normalize: bool) -> Checkpoint:
    """The newest complete checkpoint of the run in ``out``.

    Raises:
        ValueError: If the run has none, naming the folder.
    """
    found = checkpoints(out, run, normalize)
    if not found:
        raise ValueError(f"--resume {out}: no complete checkpoint (model.zip with a step in {RUN_FILE}, or "
                         "checkpoints/model_<N>_steps.zip with its statistics) to continue from")
    return found[-1]
