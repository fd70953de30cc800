"""``adaptstep train-robot``: train a robot policy on demonstrations and save it as one checkpoint."""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path

from adaptstep.nn.checkpoints import read_checkpoint
from adaptstep.policies.demos import concat_demos, load_demos
from adaptstep.policies.diffusion_policy import (DiffusionPolicyConfig, load_diffusion_policy, save_diffusion_policy,
                                                train_diffusion_policy)
from adaptstep.policies.dual_system import DualSystemConfig, load_dual_system, save_dual_system, train_dual_system
from adaptstep.policies.video_model import VideoModelConfig, load_video_model, save_video_model, train_video_model
from adaptstep.zoo import zoo_path

ROBOT_POLICIES = ("diffusion-policy", "dual-system")
DERIVED_FIELDS = ("proprio_dim", "action_dim", "image_size")  # read from the demonstrations


def _check_fields(settings: dict | None, config_class: type, name: str) -> dict:
    """``settings`` if every key is a field of ``config_class`` that the demonstrations do not fix."""
    allowed = [field.name for field in fields(config_class) if field.name not in DERIVED_FIELDS]
    unknown = sorted(set(settings or {}) - set(allowed))
    if unknown:
        raise ValueError(f"{name} keys must be among {allowed}, got {unknown}")
    return dict(settings or {})


def train_robot_policy(kind: str, demos: str | Path | list[str | Path], out: str | Path, steps: int = 4000,
                       batch_size: int = 64, lr: float = 3e-4, seed: int = 0, device: str = "auto",
                       video_model: str | Path | None = None, video_steps: int = 3000, video_lr: float | None = None,
                       config: dict | None = None, video_config: dict | None = None, init: str | Path | None = None,
                       overwrite: bool = False, progress: bool = True) -> Path:
    """Train a robot policy on demonstrations and save it; returns the checkpoint's path.

    The checkpoint's metadata records the demonstrations files.

    Args:
        kind: The policy, a key of ``ROBOT_POLICIES`` (``"diffusion-policy"``, ``"dual-system"``).
        demos: A demonstrations file, or several whose episodes are joined (``concat_demos``: DAgger's aggregate).
        out: The checkpoint to write.
        steps: The optimiser steps.
        batch_size: The windows per batch.
        lr: The learning rate.
        seed: Seeds the training.
        device: The torch device, ``"auto"`` for CUDA when present.
        video_model: The dual system's video model checkpoint; None to train one first and save it beside ``out``
            as ``<out stem>-video.pt``.
        video_steps: The training steps of that video model.
        video_lr: Its learning rate; None for ``lr``.
        config: The policy's config fields.
        video_config: The ``VideoModelConfig`` fields of the video model trained.
        init: A saved dual system to warm-start from (with its own video model).
        overwrite: Replace an existing ``out``.
        progress: Show progress bars.

    Raises:
        ValueError: If ``kind``, a config field or ``init`` with ``kind`` and ``video_model`` does not fit.
        FileExistsError: If ``out`` exists and ``overwrite`` is False.
    """
    if kind not in ROBOT_POLICIES:
        raise ValueError(f"policy must be one of {list(ROBOT_POLICIES)}, got {kind!r}")
    config = _check_fields(config, DiffusionPolicyConfig if kind == "diffusion-policy" else DualSystemConfig,
                           "config")
    video_config = _check_fields(video_config, VideoModelConfig, "video_config")
    if init is not None and (kind != "dual-system" or video_model is not None):
        raise ValueError("init (a dual system to warm-start from) needs policy 'dual-system' and no video_model")
    out = Path(out)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it")
    paths = [demos] if isinstance(demos, str | Path) else list(demos)
    data = load_demos(paths[0]) if len(paths) == 1 else concat_demos([load_demos(path) for path in paths])
    recorded = str(paths[0]) if len(paths) == 1 else [str(path) for path in paths]
    settings = dict(steps=steps, batch_size=batch_size, lr=lr, seed=seed, device=device, progress=progress,
                    **config)
    if kind == "diffusion-policy":
        policy = train_diffusion_policy(data, **settings)
        policy.metadata.update({"demos": recorded, "demos_metadata": data.metadata})
        return save_diffusion_policy(policy, out)
    if init is not None:
        policy = train_dual_system(data, None, init=load_dual_system(init, device=device), **settings)
        policy.metadata.update({"demos": recorded, "demos_metadata": data.metadata, "init": str(init)})
        return save_dual_system(policy, out)
    if video_model is None:
        video = train_video_model(data, steps=video_steps, batch_size=min(32, batch_size), lr=video_lr or lr,
                                  seed=seed, device=device, progress=progress, **video_config)
        video.metadata["demos"] = recorded
        save_video_model(video, out.with_name(f"{out.stem}-video.pt"))
    else:
        video = load_video_model(video_model, device=device)
    policy = train_dual_system(data, video, **settings)
    policy.metadata.update({"demos": recorded, "demos_metadata": data.metadata})
    return save_dual_system(policy, out)


def load_robot_policy(path: str | Path, device: str = "auto"):
    """The Diffusion Policy or dual system saved at ``path`` (``train_robot_policy``; or a ``zoo:NAME`` spec), told
    apart by its config.

    Raises:
        FileNotFoundError: If there is no file at ``path``.
    """
    path = zoo_path(path)
    if not Path(path).is_file():
        raise FileNotFoundError(f"no robot policy checkpoint at {path}")
    config = read_checkpoint(path, "robot policy").get("config")
    dual = isinstance(config, dict) and "video_model" in config
    return (load_dual_system if dual else load_diffusion_policy)(path, device=device)


def _describe(path: str | Path, dual: bool) -> dict:
    """The zoo's record of a robot policy checkpoint: its task, kind and training seconds (a dual system's own
    video model's included).

    Raises:
        ValueError: If ``path`` is not a checkpoint of that kind.
    """
    config = read_checkpoint(path, "robot policy").get("config")
    kind = ROBOT_POLICIES[dual]
    if not isinstance(config, dict) or ("video_model" in config) != dual:
        raise ValueError(f"{path} is not a {kind} checkpoint")
    metadata = (load_dual_system if dual else load_diffusion_policy)(path, device="cpu").metadata
    seconds = metadata.get("seconds", 0.0) + (metadata.get("video_model") or {}).get("seconds", 0.0)
    return {"task": (metadata.get("demos_metadata") or {}).get("task"), "algo": kind,
            "train_seconds": round(seconds, 1)}


def describe_diffusion_policy(path: str | Path) -> dict:
    """``_describe`` for a Diffusion Policy checkpoint (``Family.checkpoints``)."""
    return _describe(path, dual=False)


def describe_dual_system(path: str | Path) -> dict:
    """``_describe`` for a dual-system checkpoint (``Family.checkpoints``)."""
    return _describe(path, dual=True)
