"""Watch a controller: one rendered episode, optionally written as MP4 or GIF (rl-baselines3-zoo's ``enjoy``).

Any env whose ``metadata["render_modes"]`` holds ``rgb_array`` can be watched; a frame is taken after the reset and
after every step, and ``imageio`` writes them (MP4 through ``imageio-ffmpeg``, GIF through Pillow).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from adaptstep.agents.controllers import parse_controller
from adaptstep.core.registry import check_env_kwargs, env_class, make_env
from adaptstep.evaluation import play_episode
from adaptstep.io import atomic_path

VIDEO_SUFFIXES = (".mp4", ".gif")


class FrameRecorder:
    """Wraps an env's ``reset`` and ``step`` to keep a rendered frame after each and tick a progress bar."""

    def __init__(self, env: Any, bar: tqdm):
        self.env, self.bar, self.frames = env, bar, []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.env, name)

    def reset(self, **kwargs: Any) -> Any:
        """Reset, then keep the first frame."""
        result = self.env.reset(**kwargs)
        self.frames.append(self.env.render())
        return result

    def step(self, action: Any) -> Any:
        """Step, then keep the frame and advance the bar."""
        result = self.env.step(action)
        self.frames.append(self.env.render())
        self.bar.update()
        return result


def enjoy(env_id: str, controller: str, seed: int = 0, env_kwargs: Mapping[str, Any] | None = None,
          video: str | Path | None = None, fps: int | None = None, progress: bool = True) -> dict[str, Any]:
    """Play and render one episode of ``controller``; write the frames to ``video`` when given.

    Args:
        env_id: A registered env id that renders ``rgb_array`` frames.
        controller: A controller SPEC (a baseline, a model path or ``zoo:NAME``).
        seed: The episode's reset seed.
        env_kwargs: Env kwargs (the controller's overrides come on top).
        video: An ``.mp4`` or ``.gif`` file, or None for no file.
        fps: Frames per second of the video; None for the env's ``render_fps`` (else 10).
        progress: Show a progress bar over the episode's steps.

    Returns:
        The episode's harness row, with ``frames`` (the number of frames).

    Raises:
        ValueError: If the env does not render, the video's suffix is not one of ``VIDEO_SUFFIXES``, or the
            controller or env kwargs are bad.
    """
    modes = env_class(env_id).metadata.get("render_modes", [])
    if "rgb_array" not in modes:
        raise ValueError(f"{env_id} does not render (its render modes are {modes}); enjoy needs rgb_array")
    if video is not None and Path(video).suffix.lower() not in VIDEO_SUFFIXES:
        raise ValueError(f"video must end in one of {list(VIDEO_SUFFIXES)}, got {str(video)!r}")
    policy = parse_controller(controller, env_id)
    settings = {**dict(env_kwargs or {}), **policy.env_overrides}
    check_env_kwargs(env_id, settings)
    env = make_env(env_id, render_mode="rgb_array", **settings)
    try:
        with tqdm(desc=f"enjoy {controller}", unit="step", disable=not progress) as bar:
            recorder = FrameRecorder(env, bar)
            row = play_episode(recorder, policy, seed)
    finally:
        env.close()
    if video is not None:
        import imageio.v2 as imageio

        rate = fps or env_class(env_id).metadata.get("render_fps", 10)
        with atomic_path(video) as temporary:
            options = {"fps": rate} if Path(video).suffix.lower() == ".mp4" else {"duration": 1000 / rate, "loop": 0}
            imageio.mimwrite(temporary, [np.asarray(frame) for frame in recorder.frames], **options)
    return {**row, "frames": len(recorder.frames)}
