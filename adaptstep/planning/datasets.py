"""Offline-RL datasets in D4RL's HDF5 layout and as Minari datasets, with validation on read.

D4RL layout (Fu et al. 2020; ``d4rl.offline_env``): flat arrays over all transitions, ``observations`` (N, d),
``actions`` (N, a), ``rewards`` (N,), ``terminals`` (N,), and in newer files ``timeouts`` (N,),
``next_observations`` (N, d), ``infos/<key>`` and ``metadata/<key>``. An episode ends at a terminal or a timeout.
adaptstep also writes how the dataset was made as JSON in the root attribute ``adaptstep_metadata``.

Minari (the maintained successor): one ``EpisodeData`` per episode with T + 1 observations, written offline by
``minari.create_dataset_from_buffers`` (no environment needed; spaces are unbounded Boxes of the arrays' shapes).
Converting needs ``next_observations`` equal to the following observation inside every episode; ``infos`` and
``metadata`` are not carried over (Minari keeps its own metadata: pass ``author``, ``description``, ...).
"""

from __future__ import annotations

import json
import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from adaptstep.core.settings import check_finite
from adaptstep.io import atomic_path
from adaptstep.planning.scores import reference_scores

REQUIRED_KEYS = ("observations", "actions", "rewards", "terminals")
METADATA_ATTRIBUTE = "adaptstep_metadata"


@dataclass
class OfflineDataset:
    """N transitions in D4RL's flat layout.

    Args:
        observations: Shape (N, d).
        actions: Shape (N, a).
        rewards: Shape (N,).
        terminals: Shape (N,), bool: true terminations.
        timeouts: Shape (N,), bool: time limits; None for all False.
        next_observations: Shape (N, d), or None.
        infos: ``infos/<key>`` arrays.
        metadata: How the dataset was made.
    """

    observations: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    terminals: np.ndarray
    timeouts: np.ndarray | None = None
    next_observations: np.ndarray | None = None
    infos: dict[str, np.ndarray] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for key in ("observations", "actions", "rewards", "terminals", "timeouts", "next_observations"):
            check_finite(key, getattr(self, key))
        self.observations, self.actions = np.asarray(self.observations), np.asarray(self.actions)
        self.rewards = np.asarray(self.rewards).reshape(-1)
        self.terminals = np.asarray(self.terminals).astype(bool).reshape(-1)
        n = len(self.observations)
        self.timeouts = np.zeros(n, dtype=bool) if self.timeouts is None else np.asarray(self.timeouts).astype(bool)
        arrays = {"actions": self.actions, "rewards": self.rewards, "terminals": self.terminals,
                  "timeouts": self.timeouts, **{f"infos/{key}": value for key, value in self.infos.items()}}
        if self.next_observations is not None:
            self.next_observations = np.asarray(self.next_observations)
            arrays["next_observations"] = self.next_observations
        for key, value in arrays.items():
            if len(value) != n:
                raise ValueError(f"{key} has {len(value)} rows, observations has {n} (one row per transition)")
        if self.observations.ndim != 2 or self.actions.ndim != 2:
            raise ValueError(f"observations and actions must be 2-d (N, dim), got {self.observations.shape} and "
                             f"{self.actions.shape}")

    def __len__(self) -> int:
        return len(self.observations)

    def episodes(self) -> list[slice]:
        """Transition ranges of the episodes: each ends at a terminal or a timeout (a trailing rest counts too)."""
        ends = np.flatnonzero(self.terminals | self.timeouts) + 1
        bounds = [0, *ends.tolist()] + ([len(self)] if not len(ends) or ends[-1] != len(self) else [])
        return [slice(start, stop) for start, stop in zip(bounds[:-1], bounds[1:])]


def write_d4rl(dataset: OfflineDataset, path: str | Path, overwrite: bool = False) -> Path:
    """Write ``dataset`` to ``path`` in D4RL's HDF5 layout, atomically; an existing file needs ``overwrite``."""
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    with atomic_path(path) as temporary, h5py.File(temporary, "w") as file:
        for key in (*REQUIRED_KEYS, "timeouts"):
            file.create_dataset(key, data=getattr(dataset, key), compression="gzip")
        if dataset.next_observations is not None:
            file.create_dataset("next_observations", data=dataset.next_observations, compression="gzip")
        for key, value in dataset.infos.items():
            file.create_dataset(f"infos/{key}", data=value, compression="gzip")
        file.attrs[METADATA_ATTRIBUTE] = json.dumps(dataset.metadata)
    return path


def read_d4rl(path: str | Path) -> OfflineDataset:
    """Read a D4RL-layout HDF5 file (one adaptstep wrote or an original D4RL download) and validate it.

    Raises:
        FileNotFoundError: If there is no file at ``path``.
        ValueError: If the file is corrupt or truncated, misses a key or has mismatched lengths; the message
            names the file and the key.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no dataset file at {path}")
    try:
        file = h5py.File(path, "r")
    except OSError as error:
        raise ValueError(f"{path} is not a readable HDF5 file (corrupt or truncated?): {error}") from None
    with file:
        missing = [key for key in REQUIRED_KEYS if key not in file]
        if missing:
            raise ValueError(f"{path} lacks key {missing[0]!r}; a D4RL dataset needs {list(REQUIRED_KEYS)}")

        def read(key: str) -> np.ndarray:
            try:
                return file[key][()]
            except (OSError, KeyError, TypeError) as error:
                raise ValueError(f"{path}: key {key!r} cannot be read (corrupt or truncated?): {error}") from None

        arrays = {key: read(key) for key in REQUIRED_KEYS}
        optional = {key: read(key) for key in ("timeouts", "next_observations") if key in file}
        infos = {key: read(f"infos/{key}") for key in file["infos"]} if "infos" in file else {}
        metadata = json.loads(file.attrs[METADATA_ATTRIBUTE]) if METADATA_ATTRIBUTE in file.attrs else {}
        if "metadata" in file:  # D4RL's metadata/* entries; non-array ones are skipped (D4RL issue #222)
            metadata.update({f"metadata/{key}": _plain(file["metadata"][key][()]) for key in file["metadata"]
                             if isinstance(file["metadata"][key], h5py.Dataset) and file["metadata"][key].ndim == 0})
    try:
        return OfflineDataset(**arrays, **optional, infos=infos, metadata=metadata)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None


def _plain(value: Any) -> Any:
    return value.decode() if isinstance(value, bytes) else value.item() if hasattr(value, "item") else value


@contextmanager
def _minari_root(root: str | Path | None):
    """Point Minari at ``root`` (``MINARI_DATASETS_PATH``) for the duration of the block."""
    if root is None:
        yield
        return
    previous = os.environ.get("MINARI_DATASETS_PATH")
    os.environ["MINARI_DATASETS_PATH"] = str(root)
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop("MINARI_DATASETS_PATH")
        else:
            os.environ["MINARI_DATASETS_PATH"] = previous


def write_minari(dataset: OfflineDataset, dataset_id: str, root: str | Path | None = None,
                 task: str | None = None, **details: Any):
    """Write ``dataset`` as a Minari dataset with ``minari.create_dataset_from_buffers``.

    Args:
        dataset: The dataset; it needs ``next_observations``.
        dataset_id: The Minari dataset id.
        root: The Minari datasets folder; None for Minari's default.
        task: A D4RL task name whose reference scores are added.
        **details: Passed to Minari (author, algorithm_name, description, ...).

    Returns:
        (minari.MinariDataset): The dataset written.

    Raises:
        ValueError: If ``next_observations`` is None or does not match the following observations.
    """
    import gymnasium as gym
    import minari
    from minari.data_collector.episode_buffer import EpisodeBuffer

    if dataset.next_observations is None:
        raise ValueError("next_observations is None: a Minari episode needs its final observation")
    buffers = []
    for index, episode in enumerate(dataset.episodes()):
        observations = dataset.observations[episode]
        following = dataset.next_observations[episode]
        if not np.array_equal(observations[1:], following[:-1]):
            raise ValueError(f"next_observations differ from the following observations inside episode {index}: "
                             "Minari stores one observation sequence per episode")
        buffers.append(EpisodeBuffer(
            id=index, observations=np.concatenate([observations, following[-1:]]), actions=dataset.actions[episode],
            rewards=list(dataset.rewards[episode]), terminations=list(dataset.terminals[episode]),
            truncations=list(dataset.timeouts[episode])))
    if task is not None:
        details["ref_min_score"], details["ref_max_score"] = reference_scores(task)
    spaces = {name: gym.spaces.Box(-np.inf, np.inf, shape=array.shape[1:], dtype=array.dtype)
              for name, array in (("observation_space", dataset.observations), ("action_space", dataset.actions))}
    with _minari_root(root):
        return minari.create_dataset_from_buffers(dataset_id, buffers, **spaces, **details)


def read_minari(dataset_id: str, root: str | Path | None = None) -> OfflineDataset:
    """The local Minari dataset ``dataset_id`` (under ``root``) in D4RL's flat layout."""
    import minari

    with _minari_root(root):
        try:
            source = minari.load_dataset(dataset_id, download=False)
        except FileNotFoundError as error:
            raise FileNotFoundError(f"no local Minari dataset {dataset_id!r} (root {root or 'default'}): {error}") \
                from None
        episodes = list(source.iterate_episodes())
    if not episodes:
        raise ValueError(f"Minari dataset {dataset_id!r} holds no episodes")
    return OfflineDataset(
        observations=np.concatenate([episode.observations[:-1] for episode in episodes]),
        actions=np.concatenate([episode.actions for episode in episodes]),
        rewards=np.concatenate([episode.rewards for episode in episodes]),
        terminals=np.concatenate([episode.terminations for episode in episodes]),
        timeouts=np.concatenate([episode.truncations for episode in episodes]),
        next_observations=np.concatenate([episode.observations[1:] for episode in episodes]),
        metadata={"minari_id": dataset_id},
    )
