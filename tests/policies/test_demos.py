import h5py
import numpy as np
import pytest

from adaptstep.policies.demos import Demonstrations, concat_demos, load_demos, make_demos, save_demos
from adaptstep.policies.task import ReacherExpert, make_robot_env

STEPS = 50


@pytest.fixture(scope="module")
def demos() -> Demonstrations:
    return make_demos("reacher", episodes=2, image_size=32, seed=3)


def tiny(steps: int = 6) -> Demonstrations:
    rng = np.random.default_rng(0)
    return Demonstrations(images=rng.integers(0, 256, (steps, 4, 4, 3), dtype=np.uint8),
                          proprio=rng.normal(size=(steps, 6)).astype(np.float32),
                          actions=rng.uniform(-1, 1, (steps, 2)).astype(np.float32),
                          episode_ends=np.array([2, steps], dtype=np.int64), success=np.array([True, False]),
                          metadata={"task": "tiny", "seeds": [0, 1]})


def test_make_demos_shapes_and_metadata(demos):
    assert len(demos) == 2 * STEPS
    assert demos.images.shape == (2 * STEPS, 32, 32, 3) and demos.images.dtype == np.uint8
    assert demos.proprio.shape == (2 * STEPS, 6) and demos.actions.shape == (2 * STEPS, 2)
    np.testing.assert_array_equal(demos.episode_ends, [STEPS, 2 * STEPS])
    assert demos.episodes() == [slice(0, STEPS), slice(STEPS, 2 * STEPS)]
    assert demos.success.tolist() == [True, True]
    assert np.all(np.abs(demos.actions) <= 1)
    meta = demos.metadata
    assert meta["task"] == "reacher" and meta["image_size"] == 32 and meta["seeds"] == [3, 4]
    assert meta["expert"]["name"] == "ReacherExpert" and {"gymnasium", "mujoco"} <= set(meta["versions"])
    assert meta["made_at"]
    assert demos.target_jumps is None  # reacher's target stays


@pytest.mark.parametrize("jump_again", [None, (12, 20)])
def test_moving_target_demos_count_the_jumps(tmp_path, jump_again):
    demos = make_demos("reacher-moving", episodes=2, image_size=32, seed=3, jump_again=jump_again)
    env = make_robot_env("reacher-moving", image_size=32)
    options = {} if jump_again is None else {"jump_again": jump_again}
    for episode, steps in enumerate(demos.episodes()):
        env.reset(seed=3 + episode, options=options)
        target, shown = env.unwrapped.data.body("target").xpos.copy(), [0]
        for index in range(steps.start, steps.stop):  # replay: how often has the stored observation's target moved?
            env.step(demos.actions[index])
            moved = not np.array_equal(env.unwrapped.data.body("target").xpos, target)
            target = env.unwrapped.data.body("target").xpos.copy()
            shown.append(shown[-1] + moved)
        assert demos.target_jumps[steps].tolist() == shown[:-1]
        assert shown[-1] == 1 if jump_again is None else shown[-1] >= 2
    env.close()
    assert demos.metadata["jump_again"] == (None if jump_again is None else list(jump_again))
    loaded = load_demos(save_demos(demos, tmp_path / "moving.h5"))
    np.testing.assert_array_equal(loaded.target_jumps, demos.target_jumps)


def test_files_with_the_older_bool_target_moved_load_as_counts(tmp_path):
    path = save_demos(tiny(), tmp_path / "old.h5")
    with h5py.File(path, "a") as file:
        file.create_dataset("target_moved", data=np.array([0, 1, 0, 0, 1, 1], dtype=bool))
    assert load_demos(path).target_jumps.tolist() == [0, 1, 0, 0, 1, 1]


def test_positive_elbow_expert_demos():
    demos = make_demos("reacher-moving", episodes=1, image_size=32, seed=3, elbow="positive")
    assert demos.metadata["expert"]["elbow"] == "positive" and demos.success.all()
    with pytest.raises(ValueError, match="elbow"):
        make_demos("reacher", episodes=1, image_size=32, elbow="left")


def test_reaction_delay_keeps_the_targets_and_waits_0_to_d_steps_after_each_jump():
    kwargs = dict(task="reacher-moving", episodes=3, image_size=32, seed=3, jump_again=(12, 20), elbow="positive")
    prompt, late = make_demos(**kwargs), make_demos(**kwargs, reaction_delay=3)
    assert prompt.expert_waits is None and late.metadata["reaction_delay"] == 3
    np.testing.assert_array_equal(late.target_jumps, prompt.target_jumps)  # the same jumps at the same steps
    jumped = np.flatnonzero(np.diff(late.target_jumps) > 0) + 1
    waited = []
    for step in jumped:
        wait = 0
        while late.expert_waits[step + wait]:
            wait += 1
        waited.append(wait)
        assert not np.allclose(late.actions[step + wait:step + wait + 4], 0, atol=0.05)  # it does react
    for steps in late.episodes():  # until the first jump the two experts act alike
        first = jumped[jumped > steps.start][0]
        np.testing.assert_array_equal(late.actions[steps.start:first], prompt.actions[steps.start:first])
    assert set(waited) <= {0, 1, 2, 3} and len(set(waited)) >= 2
    assert late.expert_waits.sum() == sum(waited)  # it waits only right after the jumps
    expert, env = ReacherExpert(elbow="positive"), make_robot_env("reacher-moving", image_size=32)
    env.reset(seed=3, options={"jump_again": (12, 20)})  # replay episode 0: while it waits it steers to the old target
    steered = env.unwrapped.data.body("target").xpos[:2].copy()
    for step in range(late.episode_ends[0]):
        if not late.expert_waits[step]:
            steered = env.unwrapped.data.body("target").xpos[:2].copy()
        np.testing.assert_allclose(late.actions[step], expert(env, steered), atol=1e-6)
        env.step(late.actions[step])
    env.close()


def test_reaction_delay_bad_input():
    for task, delay in (("reacher-moving", -1), ("reacher-moving", 1.5), ("reacher", 2), ("reacher-appearing", 2)):
        with pytest.raises(ValueError, match="reaction_delay"):
            make_demos(task, episodes=1, image_size=32, reaction_delay=delay)
    good = make_demos("reacher-moving", episodes=1, image_size=32, reaction_delay=2)
    with pytest.raises(ValueError, match="expert_waits"):
        Demonstrations(good.images, good.proprio, good.actions, good.episode_ends, good.success,
                       target_jumps=None, expert_waits=good.expert_waits)


def test_random_start_share_starts_those_episodes_in_random_poses():
    demos = make_demos("reacher", episodes=4, image_size=32, seed=3, random_start=0.5)
    first_cos = demos.proprio[np.concatenate([[0], demos.episode_ends[:-1]]), :2]  # cos of both joints at start
    assert np.all(first_cos[[0, 2]] > np.cos(0.1)) and np.all(first_cos[[1, 3]].min(axis=1) < np.cos(0.1))
    assert demos.success.all() and demos.metadata["random_start"] == 0.5
    for bad in (-0.1, 1.5, True, "half"):
        with pytest.raises(ValueError, match="random_start"):
            make_demos("reacher", episodes=1, random_start=bad)


def test_demo_steps_are_the_observations_before_each_action(demos):
    env = make_robot_env(image_size=32)
    for episode, steps in enumerate(demos.episodes()):
        observation, _ = env.reset(seed=3 + episode)
        for index in (steps.start, steps.start + 1):
            np.testing.assert_array_equal(demos.images[index], observation["image"])
            np.testing.assert_array_equal(demos.proprio[index], observation["proprio"])
            observation, *_ = env.step(demos.actions[index])
    env.close()


def test_round_trip_is_identical(demos, tmp_path):
    path = save_demos(demos, tmp_path / "sub" / "demos.h5")
    loaded = load_demos(path)
    for key in ("images", "proprio", "actions", "episode_ends", "success"):
        original, restored = getattr(demos, key), getattr(loaded, key)
        assert restored.dtype == original.dtype
        np.testing.assert_array_equal(restored, original)
    assert loaded.metadata == demos.metadata and loaded.target_jumps is None
    with h5py.File(path) as file:
        assert file["images"].compression == "gzip" and "target_jumps" not in file


def test_failed_save_leaves_no_file(tmp_path):
    demos = tiny()
    demos.metadata["unserialisable"] = object()
    with pytest.raises(TypeError):
        save_demos(demos, tmp_path / "demos.h5")
    assert list(tmp_path.iterdir()) == []
    good = save_demos(tiny(), tmp_path / "demos.h5")
    with pytest.raises(TypeError):
        save_demos(demos, good)
    assert [path.name for path in tmp_path.iterdir()] == ["demos.h5"]
    np.testing.assert_array_equal(load_demos(good).images, tiny().images)


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.h5"):
        load_demos(tmp_path / "nowhere.h5")


def test_not_hdf5_and_truncated(tmp_path):
    garbage = tmp_path / "garbage.h5"
    garbage.write_bytes(b"not an hdf5 file at all" * 10)
    with pytest.raises(ValueError, match="garbage.h5"):
        load_demos(garbage)
    truncated = save_demos(tiny(300), tmp_path / "truncated.h5")
    truncated.write_bytes(truncated.read_bytes()[:2000])
    with pytest.raises(ValueError, match="truncated.h5"):
        load_demos(truncated)


def edit(path, key, value=None):
    """Delete dataset ``key`` of the file at ``path`` and, unless ``value`` is None, write ``value`` there."""
    with h5py.File(path, "a") as file:
        del file[key]
        if value is not None:
            file[key] = value


@pytest.mark.parametrize("key, value", [
    ("images", None),
    ("proprio", None),
    ("actions", None),
    ("episode_ends", None),
    ("success", None),
    ("images", np.zeros((6, 4, 4, 3), np.float32)),
    ("images", np.zeros((6, 4, 4), np.uint8)),
    ("proprio", np.zeros((5, 6), np.float32)),
    ("actions", np.zeros((7, 2), np.float32)),
    ("episode_ends", np.array([2, 5], np.int64)),
    ("episode_ends", np.array([4, 2, 6], np.int64)),
    ("success", np.array([True, False, True])),
])
def test_bad_dataset_names_file_and_key(tmp_path, key, value):
    path = save_demos(tiny(), tmp_path / "bad.h5")
    edit(path, key, value)
    with pytest.raises(ValueError, match=rf"bad\.h5.*{key}"):
        load_demos(path)


@pytest.mark.parametrize("metadata", [None, "{not json", "[1, 2]"])
def test_bad_metadata_names_file_and_key(tmp_path, metadata):
    path = save_demos(tiny(), tmp_path / "bad.h5")
    with h5py.File(path, "a") as file:
        del file.attrs["metadata"]
        if metadata is not None:
            file.attrs["metadata"] = metadata
    with pytest.raises(ValueError, match=r"bad\.h5.*metadata"):
        load_demos(path)


def test_demonstrations_validate_directly():
    good = tiny()
    with pytest.raises(ValueError, match="images"):
        Demonstrations(good.images.astype(np.int16), good.proprio, good.actions, good.episode_ends, good.success)
    with pytest.raises(ValueError, match="actions"):
        Demonstrations(good.images, good.proprio, good.actions.astype(np.float64), good.episode_ends, good.success)
    with pytest.raises(ValueError, match="episode_ends"):
        Demonstrations(good.images, good.proprio, good.actions, np.array([0, 6]), good.success)
    with pytest.raises(ValueError, match="success"):
        Demonstrations(good.images, good.proprio, good.actions, good.episode_ends, np.array([1, 0]))
    for bad in (np.zeros(len(good) - 1, np.int64), np.zeros(len(good), bool), -np.ones(len(good), np.int64)):
        with pytest.raises(ValueError, match="target_jumps"):
            Demonstrations(good.images, good.proprio, good.actions, good.episode_ends, good.success, target_jumps=bad)


@pytest.mark.parametrize("kwargs, name", [({"episodes": 0}, "episodes"), ({"task": "pusher"}, "task"),
                                          ({"image_size": 8}, "image_size"), ({"seed": 1.5}, "seed")])
def test_make_demos_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_demos(**kwargs)


def test_cli_writes_moving_demos_with_random_starts(tmp_path, capsys):
    from adaptstep.cli import main

    out = tmp_path / "moving.hdf5"
    main(["data", "make", "reacher-moving-demos", "--episodes", "2", "--image-size", "32", "--random-start", "0.5",
          "--jump-again", "12,20", "--elbow", "positive", "--reaction-delay", "3", "--out", str(out), "--no-progress"])
    demos = load_demos(out)
    meta = demos.metadata
    assert meta["random_start"] == 0.5 and meta["jump_again"] == [12, 20] and meta["expert"]["elbow"] == "positive"
    assert "--random-start 0.5 --jump-again 12,20 --elbow positive --reaction-delay 3" in meta["command"]
    assert meta["reaction_delay"] == 3 and demos.expert_waits is not None  # saved and loaded
    assert demos.target_jumps is not None and demos.target_jumps.max() >= 2
    assert "expert success" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["data", "make", "reacher-moving-demos", "--jump-again", "12", "--out", str(tmp_path / "x.hdf5")])
    assert "LO,HI" in capsys.readouterr().err


def test_cli_writes_drifting_demos_whose_images_follow_the_moving_target(tmp_path):
    from adaptstep.cli import main

    out = tmp_path / "drifting.hdf5"
    main(["data", "make", "reacher-drifting-demos", "--episodes", "2", "--image-size", "32", "--out", str(out),
          "--no-progress"])
    demos = load_demos(out)
    assert demos.metadata["task"] == "reacher-drifting" and demos.target_jumps is None and demos.success.all()
    env = make_robot_env("reacher-drifting", image_size=32)
    observation, _ = env.reset(seed=0)
    np.testing.assert_array_equal(demos.images[0], observation["image"])
    for step in range(1, STEPS):
        observation = env.step(demos.actions[step - 1])[0]
    np.testing.assert_array_equal(demos.images[STEPS - 1], observation["image"])  # the replay lands where it drifted
    env.close()


def test_concat_demos_keeps_every_episode_and_marks_who_waits():
    kwargs = dict(task="reacher-moving", image_size=32, jump_again=(12, 20), elbow="positive")
    late, prompt = make_demos(episodes=2, reaction_delay=3, **kwargs), make_demos(episodes=1, seed=9, **kwargs)
    both = concat_demos([late, prompt])
    assert both.episode_ends.tolist() == [80, 160, 240] and both.success.tolist() == [*late.success, *prompt.success]
    for part, steps in ((late, slice(0, 160)), (prompt, slice(160, 240))):
        np.testing.assert_array_equal(both.images[steps], part.images)
        np.testing.assert_array_equal(both.actions[steps], part.actions)
        np.testing.assert_array_equal(both.target_jumps[steps], part.target_jumps)
    np.testing.assert_array_equal(both.expert_waits, np.concatenate([late.expert_waits, np.zeros(80, bool)]))
    assert both.metadata["task"] == "reacher-moving" and both.metadata["parts"] == [late.metadata, prompt.metadata]


def test_concat_demos_bad_input(demos):
    moving = make_demos("reacher-moving", episodes=1, image_size=32)
    with pytest.raises(ValueError, match="share a task"):
        concat_demos([demos, moving])
    with pytest.raises(ValueError, match="share a task"):
        concat_demos([demos, Demonstrations(**{**vars(demos), "images": demos.images[:, :16, :16].copy()})])
    with pytest.raises(ValueError, match="target_jumps"):
        concat_demos([moving, Demonstrations(**{**vars(moving), "target_jumps": None})])
    with pytest.raises(ValueError, match="parts must be a non-empty list"):
        concat_demos([])
