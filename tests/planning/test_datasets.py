"""Offline datasets: D4RL-layout HDF5 and Minari round trips, D4RL's normalized score, clear errors on bad files."""

import h5py
import numpy as np
import pytest

from adaptstep.planning import (
    OfflineDataset,
    normalized_score,
    read_d4rl,
    read_minari,
    reference_scores,
    write_d4rl,
    write_minari,
)

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:minari")  # Minari's advice on optional metadata

FIELDS = ("observations", "actions", "rewards", "terminals", "timeouts", "next_observations")


@pytest.fixture
def dataset() -> OfflineDataset:
    """Three episodes (5, 7, 4 steps): timeout, terminal, timeout; next_observations consistent within episodes."""
    rng = np.random.default_rng(0)
    parts = {key: [] for key in FIELDS}
    for length, terminal in ((5, False), (7, True), (4, False)):
        states = rng.standard_normal((length + 1, 4)).astype(np.float32)
        last, none = np.arange(length) == length - 1, np.zeros(length, dtype=bool)
        parts["observations"].append(states[:-1])
        parts["next_observations"].append(states[1:])
        parts["actions"].append(rng.standard_normal((length, 2)).astype(np.float32))
        parts["rewards"].append(rng.standard_normal(length).astype(np.float32))
        parts["terminals"].append(last if terminal else none)
        parts["timeouts"].append(none if terminal else last)
    arrays = {key: np.concatenate(value) for key, value in parts.items()}
    return OfflineDataset(**arrays, infos={"goal": rng.standard_normal((16, 2))},
                          metadata={"command": "test", "transitions": 16})


def _same(first: OfflineDataset, second: OfflineDataset) -> None:
    for key in FIELDS:
        np.testing.assert_array_equal(getattr(first, key), getattr(second, key), err_msg=key)


def test_episodes_end_at_terminals_and_timeouts(dataset):
    assert dataset.episodes() == [slice(0, 5), slice(5, 12), slice(12, 16)]


def test_d4rl_round_trip_is_identical(dataset, tmp_path):
    back = read_d4rl(write_d4rl(dataset, tmp_path / "data.hdf5"))
    _same(dataset, back)
    np.testing.assert_array_equal(back.infos["goal"], dataset.infos["goal"])
    assert back.metadata == dataset.metadata
    with pytest.raises(FileExistsError, match="overwrite"):
        write_d4rl(dataset, tmp_path / "data.hdf5")


def test_minari_round_trip_is_identical(dataset, tmp_path):
    minari_dataset = write_minari(dataset, "adaptstep/toy-v0", root=tmp_path, task="maze2d-umaze-v1",
                                  author="adaptstep", algorithm_name="test")
    assert minari_dataset.total_episodes == 3 and minari_dataset.total_steps == 16
    _same(dataset, read_minari("adaptstep/toy-v0", root=tmp_path))


def test_reads_an_original_d4rl_style_file(tmp_path, dataset):
    """Original D4RL files lack the adaptstep attribute and carry metadata/* entries, some of them arrays."""
    path = tmp_path / "d4rl.hdf5"
    with h5py.File(path, "w") as file:
        for key in ("observations", "actions", "rewards", "terminals"):
            file[key] = getattr(dataset, key)
        file["metadata/algorithm"] = "SAC"
        file["metadata/policy/fc0/weight"] = np.ones((3, 3))
    back = read_d4rl(path)
    assert back.metadata == {"metadata/algorithm": "SAC"}
    assert back.next_observations is None and not back.timeouts.any()


def test_normalized_score_matches_the_reference_formula():
    assert normalized_score("hopper-medium-v2", -20.272305) == pytest.approx(0.0)
    assert normalized_score("hopper-medium-replay-v2", 3234.3) == pytest.approx(100.0)
    middle = (-280.178953 + 12135.0) / 2
    assert normalized_score("halfcheetah-expert-v2", middle) == pytest.approx(50.0)
    assert normalized_score("maze2d-umaze-v1", 161.86) == pytest.approx(100.0)
    assert reference_scores("maze2d-large-dense-v1") == (30.569041, 303.4857382709002)
    assert reference_scores("antmaze-large-diverse-v2") == (0.0, 1.0)
    np.testing.assert_allclose(normalized_score("walker2d", np.array([1.629008, 4592.3])), [0.0, 100.0])
    with pytest.raises(ValueError, match="task must name one of"):
        normalized_score("pendulum-v1", 1.0)


def test_corrupt_and_truncated_files_are_named(dataset, tmp_path):
    corrupt = tmp_path / "corrupt.hdf5"
    corrupt.write_bytes(b"not an hdf5 file at all" * 10)
    with pytest.raises(ValueError, match="corrupt.hdf5 is not a readable HDF5 file"):
        read_d4rl(corrupt)
    good = write_d4rl(dataset, tmp_path / "good.hdf5")
    truncated = tmp_path / "truncated.hdf5"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ValueError, match="truncated.hdf5"):
        read_d4rl(truncated)
    with pytest.raises(FileNotFoundError, match="missing.hdf5"):
        read_d4rl(tmp_path / "missing.hdf5")


def test_missing_keys_and_mismatched_lengths_are_named(dataset, tmp_path):
    path = tmp_path / "no-rewards.hdf5"
    with h5py.File(path, "w") as file:
        for key in ("observations", "actions", "terminals"):
            file[key] = getattr(dataset, key)
    with pytest.raises(ValueError, match=r"no-rewards.hdf5 lacks key 'rewards'"):
        read_d4rl(path)
    path = tmp_path / "short.hdf5"
    with h5py.File(path, "w") as file:
        for key in ("observations", "rewards", "terminals"):
            file[key] = getattr(dataset, key)
        file["actions"] = dataset.actions[:-1]
    with pytest.raises(ValueError, match=r"short.hdf5: actions has 15 rows, observations has 16"):
        read_d4rl(path)


def test_minari_needs_consistent_episodes(dataset, tmp_path):
    broken = OfflineDataset(dataset.observations, dataset.actions, dataset.rewards, dataset.terminals,
                            dataset.timeouts, dataset.next_observations + 1.0)
    with pytest.raises(ValueError, match="next_observations differ"):
        write_minari(broken, "adaptstep/broken-v0", root=tmp_path)
    with pytest.raises(ValueError, match="next_observations is None"):
        write_minari(OfflineDataset(dataset.observations, dataset.actions, dataset.rewards, dataset.terminals),
                     "adaptstep/none-v0", root=tmp_path)
    with pytest.raises(FileNotFoundError, match="no local Minari dataset"):
        read_minari("adaptstep/absent-v0", root=tmp_path)
