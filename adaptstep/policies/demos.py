"""Expert demonstrations of a robot task, saved to HDF5.

They are stored flat like Diffusion Policy's ``ReplayBuffer`` (Chi et al. 2023): step arrays of length N and the
exclusive end index of each episode.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import gymnasium
import h5py
import mujoco
import numpy as np
from tqdm.auto import tqdm

from adaptstep._version import __version__
from adaptstep.core.settings import check_finite
from adaptstep.io import atomic_path
from adaptstep.policies.task import PUSHT_ENV_ID, expert_target, is_reacher, make_expert, make_robot_env, robot_task

ARRAYS = ("images", "proprio", "actions", "episode_ends", "success")
OPTIONAL_ARRAYS = ("target_jumps", "expert_waits")
LEGACY_ARRAYS = {"target_moved": "target_jumps"}  # files made before repeated jumps: a bool per step


@dataclass
class Demonstrations:
    """N steps of E episodes of a robot task.

    Args:
        images: The observation image at each step, uint8 (N, H, W, 3).
        proprio: The proprioception at each step, float32 (N, P).
        actions: The expert's action at each step, float32 (N, A).
        episode_ends: The episodes' exclusive ends, int64 (E,), strictly increasing, the last = N.
        success: Each episode's final success, bool (E,).
        metadata: The settings that made them (task, image size, command, …).
        target_jumps: For a task whose target jumps, the jumps each step's observation shows
            (``info["target_jumps"]``), int64 (N,); None for a task without a jump.
        expert_waits: Made with a reaction delay, bool (N,): the steps where the expert still steers to the target
            from before the last jump; None where it always reacts at once.

    Raises:
        ValueError: If an array has the wrong dtype, shape or values.
    """

    images: np.ndarray
    proprio: np.ndarray
    actions: np.ndarray
    episode_ends: np.ndarray
    success: np.ndarray
    metadata: dict = field(default_factory=dict)
    target_jumps: np.ndarray | None = None
    expert_waits: np.ndarray | None = None

    def __post_init__(self):
        images, ends = self.images, self.episode_ends
        if not (isinstance(images, np.ndarray) and images.dtype == np.uint8 and images.ndim == 4
                and images.shape[-1] == 3):
            raise ValueError(f"images must be a uint8 array of shape (N, H, W, 3), got {_describe(images)}")
        steps = len(images)
        for key in ("proprio", "actions"):
            value = getattr(self, key)
            if not (isinstance(value, np.ndarray) and value.dtype == np.float32 and value.ndim == 2
                    and len(value) == steps):
                raise ValueError(f"{key} must be a float32 array of shape (N={steps}, D), got {_describe(value)}")
            check_finite(key, value)
        if not (isinstance(ends, np.ndarray) and ends.dtype == np.int64 and ends.ndim == 1 and len(ends) >= 1
                and ends[0] >= 1 and np.all(np.diff(ends) >= 1) and ends[-1] == steps):
            raise ValueError("episode_ends must be a non-empty, strictly increasing int64 array of exclusive ends >= 1 "
                             f"whose last is N={steps}, got {_describe(ends)} {ends!r}")
        if not (isinstance(self.success, np.ndarray) and self.success.dtype == np.bool_
                and self.success.shape == ends.shape):
            raise ValueError(f"success must be a bool array of shape (E={len(ends)},), got {_describe(self.success)}")
        jumps = self.target_jumps
        if jumps is not None and not (isinstance(jumps, np.ndarray) and jumps.dtype == np.int64
                                      and jumps.shape == (steps,) and np.all(jumps >= 0)):
            raise ValueError(f"target_jumps must be None or a non-negative int64 array of shape (N={steps},), got "
                             f"{_describe(jumps)}")
        waits = self.expert_waits
        if waits is not None and not (isinstance(waits, np.ndarray) and waits.dtype == np.bool_
                                      and waits.shape == (steps,) and jumps is not None):
            raise ValueError(f"expert_waits must be None or a bool array of shape (N={steps},) beside target_jumps, "
                             f"got {_describe(waits)}")
        if not isinstance(self.metadata, dict):
            raise ValueError(f"metadata must be a dict, got {type(self.metadata).__name__}")

    def __len__(self) -> int:
        return len(self.images)

    def episodes(self) -> list[slice]:
        """One slice into the step arrays per episode."""
        starts = np.concatenate([[0], self.episode_ends[:-1]])
        return [slice(int(start), int(end)) for start, end in zip(starts, self.episode_ends)]


def _describe(value) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    return type(value).__name__


def make_demos(task: str = "reacher", episodes: int = 200, image_size: int = 64, seed: int = 0,
               progress: bool = False, random_start: float = 0.0, jump_again: tuple[int, int] | None = None,
               elbow: str = "nearest", reaction_delay: int = 0) -> Demonstrations:
    """Roll out the task's scripted expert (``make_expert(task, elbow)``) for ``episodes`` episodes.

    On PushT ``metadata["final_coverage"]`` holds each episode's final goal coverage.

    Each step stores the observation and the expert's action taken from it (and, for a task whose target jumps, how
    many jumps the observation shows). With ``reaction_delay`` = D the expert reacts to each jump d steps late,
    d uniform in 0 … D (from a generator of its own, seeded ``(seed, e)``, so the targets are those of D = 0), and
    steers to the old target until then (``expert_waits``): the arm at rest by the old target while the new one
    shows is the state a chunk policy's first call after a jump meets, up to ``action_steps`` − 1 steps late.

    Args:
        task: The robot task (``reacher``, ``reacher-moving``, …).
        episodes: The number of episodes (>= 1).
        image_size: The camera image's side, in pixels.
        seed: Episode e resets its env with seed ``seed + e``.
        progress: Show a progress bar.
        random_start: The share of episodes, in [0, 1], that start with the arm at rest in a random pose, spread
            evenly (episode e where ⌊(e + 1)·share⌋ > ⌊e·share⌋).
        jump_again: (lo, hi): the target jumps again lo-hi steps after each jump, for more reactions to a new target
            than one per episode; None for one jump. Like ``random_start``, an ``ImageReacher.reset`` option.
        elbow: The expert's elbow branch, ``"nearest"`` or ``"positive"``.
        reaction_delay: D above (>= 0; > 0 only on a task whose target jumps).

    Raises:
        ValueError: If an argument is out of range.
    """
    robot_task(task)
    if isinstance(random_start, bool) or not isinstance(random_start, int | float) or not 0 <= random_start <= 1:
        raise ValueError(f"random_start must be a number in [0, 1], got {random_start!r}")
    if isinstance(episodes, bool) or not isinstance(episodes, int | np.integer) or episodes < 1:
        raise ValueError(f"episodes must be an int >= 1, got {episodes!r}")
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer):
        raise ValueError(f"seed must be an int, got {seed!r}")
    jumps = robot_task(task).target_jump is not None
    if (isinstance(reaction_delay, bool) or not isinstance(reaction_delay, int | np.integer) or reaction_delay < 0
            or reaction_delay and (not jumps or robot_task(task).target_appears)):
        raise ValueError(f"reaction_delay must be an int >= 0, and > 0 only on a task whose target jumps to a new "
                         f"point (reacher-moving), got {reaction_delay!r} for task {task!r}")
    reacher, pusht = is_reacher(task), robot_task(task).env_id == PUSHT_ENV_ID
    if not reacher and (random_start or jump_again is not None):
        raise ValueError(f"random_start and jump_again are reacher options; {task} takes neither")
    expert = make_expert(task, elbow)
    env = make_robot_env(task, image_size)
    options = {} if jump_again is None else {"jump_again": jump_again}
    images, proprio, actions, ends, success, shown_jumps, waits, coverage = [], [], [], [], [], [], [], []
    try:
        for episode in tqdm(range(episodes), desc=f"demos {task}", unit="episode", disable=not progress):
            random_pose = int((episode + 1) * random_start) > int(episode * random_start)
            observation, info = env.reset(seed=int(seed) + episode, options=None if not reacher else {
                **options, "arm_pose": "random" if random_pose else "rest"})
            if hasattr(expert, "reset"):
                expert.reset()
            delays = np.random.default_rng([int(seed), episode])
            step, seen_jumps, react_at, done = 0, 0, 0, False
            while not done:
                if info.get("target_jumps", 0) != seen_jumps:
                    seen_jumps, react_at = info["target_jumps"], step + int(delays.integers(reaction_delay + 1))
                if step >= react_at:
                    steered = expert_target(env)
                action = expert(env, steered)
                images.append(observation["image"])
                proprio.append(observation["proprio"])
                shown_jumps.append(info.get("target_jumps", 0))
                waits.append(step < react_at)
                actions.append(action)
                observation, _, terminated, truncated, info = env.step(action)
                done, step = terminated or truncated, step + 1
            ends.append(len(actions))
            success.append(info["success"])
            coverage.append(info.get("coverage", np.nan))
    finally:
        env.close()

    metadata = {
        "task": task,
        "image_size": int(image_size),
        "seeds": list(range(int(seed), int(seed) + episodes)),
        "random_start": float(random_start),
        "jump_again": None if jump_again is None else [int(gap) for gap in jump_again],
        "reaction_delay": int(reaction_delay),
        "expert": {"name": type(expert).__name__, **{key: value for key, value in vars(expert).items()
                                                      if not key.startswith("_")}},
        "versions": {"adaptstep": __version__, "gymnasium": gymnasium.__version__,
                     "mujoco": mujoco.__version__, "numpy": np.__version__},
        "made_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    if pusht:
        metadata["final_coverage"] = [float(value) for value in coverage]
    return Demonstrations(np.stack(images), np.stack(proprio).astype(np.float32),
                          np.stack(actions).astype(np.float32), np.array(ends, dtype=np.int64),
                          np.array(success, dtype=bool), metadata,
                          np.array(shown_jumps, dtype=np.int64) if jumps else None,
                          np.array(waits, dtype=bool) if reaction_delay else None)


def concat_demos(parts: list[Demonstrations]) -> Demonstrations:
    """The episodes of all ``parts`` (of one task and image size) in order, as one set.

    This is DAgger's aggregate of the expert's demonstrations and the policy's labelled episodes. ``expert_waits`` is
    kept where a part has it and False (reacting at once) elsewhere; ``metadata["parts"]`` holds each part's
    metadata.

    Raises:
        ValueError: If ``parts`` is empty, the parts differ in task or shapes, or only some have ``target_jumps``.
    """
    if not (isinstance(parts, (list, tuple)) and parts and all(isinstance(part, Demonstrations) for part in parts)):
        raise ValueError(f"parts must be a non-empty list of Demonstrations, got {parts!r}")
    tasks = {part.metadata.get("task") for part in parts}
    shapes = {(part.images.shape[1:], part.proprio.shape[1], part.actions.shape[1]) for part in parts}
    if len(tasks) > 1 or len(shapes) > 1:
        raise ValueError(f"parts must share a task and image, proprio and action shapes, got tasks "
                         f"{sorted(map(str, tasks))} and shapes {sorted(shapes)}")
    with_jumps = [part.target_jumps is not None for part in parts]
    if any(with_jumps) and not all(with_jumps):
        raise ValueError("parts must all have target_jumps or none")
    offsets = np.cumsum([0] + [len(part) for part in parts[:-1]])
    waits = None
    if any(part.expert_waits is not None for part in parts):
        waits = np.concatenate([np.zeros(len(part), bool) if part.expert_waits is None else part.expert_waits
                                for part in parts])
    return Demonstrations(
        np.concatenate([part.images for part in parts]), np.concatenate([part.proprio for part in parts]),
        np.concatenate([part.actions for part in parts]),
        np.concatenate([part.episode_ends + offset for part, offset in zip(parts, offsets)]).astype(np.int64),
        np.concatenate([part.success for part in parts]),
        {"task": parts[0].metadata.get("task"), "image_size": int(parts[0].images.shape[1]),
         "parts": [part.metadata for part in parts]},
        np.concatenate([part.target_jumps for part in parts]) if all(with_jumps) else None, waits)


def save_demos(demos: Demonstrations, path: str | Path) -> Path:
    """Write ``demos`` to an HDF5 file atomically and return ``path``.

    One dataset per array (images gzip-compressed in chunks of frames; ``target_jumps`` only where there is one), the
    metadata as a JSON attribute.
    """
    path = Path(path)
    with atomic_path(path) as temporary, h5py.File(temporary, "w") as file:
        for key in ARRAYS + OPTIONAL_ARRAYS:
            value = getattr(demos, key)
            if value is None:
                continue
            if key == "images":
                file.create_dataset(key, data=value, compression="gzip", compression_opts=4,
                                    chunks=(min(len(value), 64), *value.shape[1:]))
            else:
                file.create_dataset(key, data=value)
        file.attrs["metadata"] = json.dumps(demos.metadata)
    return path


def load_demos(path: str | Path) -> Demonstrations:
    """The demonstrations saved at ``path``.

    Raises:
        FileNotFoundError: If the file is missing.
        ValueError: If it is not a readable demonstrations file, naming the file (and the key).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no demonstrations file at {path}")
    try:
        file = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{path} is not a readable HDF5 demonstrations file: {error}") from error
    with file:
        arrays = {key: _read(file, key, path) for key in ARRAYS}
        arrays.update({key: _read(file, key, path) for key in OPTIONAL_ARRAYS if key in file})
        arrays.update({new: _read(file, old, path).astype(np.int64) for old, new in LEGACY_ARRAYS.items()
                       if old in file and new not in file})
        if "metadata" not in file.attrs:
            raise ValueError(f"{path}: missing attribute 'metadata' (a JSON object)")
        try:
            metadata = json.loads(file.attrs["metadata"])
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: attribute 'metadata' is not valid JSON: {error}") from error
    try:
        return Demonstrations(**arrays, metadata=metadata)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error


def _read(file: h5py.File, key: str, path: Path) -> np.ndarray:
    if not isinstance(file.get(key), h5py.Dataset):
        raise ValueError(f"{path}: missing dataset {key!r}; a demonstrations file holds {list(ARRAYS)}")
    try:
        return file[key][()]
    except (OSError, ValueError) as error:
        raise ValueError(f"{path}: dataset {key!r} cannot be read: {error}") from error
