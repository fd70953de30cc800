import gc
import warnings

import gymnasium as gym
import mujoco
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from adaptstep.policies.task import ROBOT_TASKS, TOP_DOWN_CAMERA, ReacherExpert, make_robot_env

SIZE = 32


@pytest.fixture(scope="module")
def env():
    env = make_robot_env("reacher", image_size=SIZE)
    yield env
    env.close()


def red_pixels(image: np.ndarray) -> np.ndarray:
    """Mask of the target's saturated red (the arm is blue-green, the floor grey, the base pink)."""
    red, green, blue = (image[..., channel].astype(int) for channel in range(3))
    return red - np.maximum(green, blue) > 100


def pixel_of(position: np.ndarray, size: int) -> np.ndarray:
    """(row, col) of a floor point in the top-down pinhole camera: half-width = distance * tan(fovy / 2)."""
    half_width = TOP_DOWN_CAMERA["distance"] * np.tan(np.radians(45.0 / 2))
    return np.array([(1 - position[1] / half_width) * size / 2, (1 + position[0] / half_width) * size / 2])


def rollout(env, policy, seed: int) -> tuple[list[dict], int]:
    """Infos of one episode and its number of steps."""
    env.reset(seed=seed)
    infos, done = [], False
    while not done:
        _, _, terminated, truncated, info = env.step(policy(env))
        assert not terminated
        infos.append(info)
        done = truncated
    return infos, len(infos)


def test_observation_contract(env):
    space = env.observation_space
    assert space["image"].shape == (SIZE, SIZE, 3) and space["image"].dtype == np.uint8
    assert space["proprio"].shape == (ROBOT_TASKS["reacher"].proprio_dim,) and space["proprio"].dtype == np.float32
    assert env.action_space.shape == (ROBOT_TASKS["reacher"].action_dim,)
    observation, info = env.reset(seed=1)
    for _ in range(3):
        assert space.contains(observation)
        data = env.unwrapped.data
        q, dq = data.qpos[:2], data.qvel[:2]
        np.testing.assert_allclose(observation["proprio"], np.concatenate([np.cos(q), np.sin(q), dq]), rtol=1e-6)
        assert 0 <= info["distance"] < 0.5 and isinstance(info["success"], bool)
        observation, _, _, _, info = env.step(env.action_space.sample())


def test_gymnasium_env_checker():
    env = make_robot_env("reacher", image_size=SIZE)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the checker only warns that it is given a wrapped env
        check_env(env)
    env.close()


def test_target_is_visible_where_it_is(env):
    for seed in range(4):
        observation, _ = env.reset(seed=seed)
        mask = red_pixels(observation["image"])
        assert mask.sum() >= 8, f"seed {seed}: only {mask.sum()} target pixels"
        centroid = np.argwhere(mask).mean(axis=0) + 0.5
        target = env.unwrapped.data.body("target").xpos[:2]
        np.testing.assert_allclose(centroid, pixel_of(target, SIZE), atol=1.0)


def test_envs_render_their_own_scene_when_interleaved_and_after_another_is_closed_and_collected(env):
    alone, _ = env.reset(seed=2)
    other = make_robot_env(image_size=SIZE)
    other.reset(seed=3)
    interleaved, _ = env.reset(seed=2)
    other.close()
    after_close, _ = env.reset(seed=2)
    del other
    gc.collect()  # with Gymnasium's own close this deleted our env's framebuffer: black images
    after_collect, _ = env.reset(seed=2)
    for image in (interleaved, after_close, after_collect):
        np.testing.assert_array_equal(image["image"], alone["image"])


def test_target_visible_at_64_pixels():
    env = make_robot_env(image_size=64, seed=0)
    observation, _ = env.reset()
    assert 25 <= red_pixels(observation["image"]).sum() <= 50  # a disc of radius 0.025 m covers about 35 px
    env.close()


def test_physics_is_reacher_v5():
    raw = gym.make("Reacher-v5")
    ours = make_robot_env(image_size=SIZE)
    actions = np.random.default_rng(0).uniform(-1, 1, (10, 2)).astype(np.float32)
    raw.reset(seed=5)
    ours.reset(seed=5)
    for action in actions:
        raw_state, raw_reward, *_ = raw.step(action)
        _, reward, *_ = ours.step(action)
        np.testing.assert_array_equal(ours.unwrapped.data.qpos, raw.unwrapped.data.qpos)
        assert reward == raw_reward
    target = mujoco.mj_name2id(ours.unwrapped.model, mujoco.mjtObj.mjOBJ_GEOM, "target")
    assert ours.unwrapped.model.geom_contype[target] == ours.unwrapped.model.geom_conaffinity[target] == 0
    raw.close()
    ours.close()


def test_seed_argument_seeds_the_first_reset(env):
    seeded = make_robot_env(image_size=SIZE, seed=7)
    first, _ = seeded.reset()
    again, _ = env.reset(seed=7)
    np.testing.assert_array_equal(first["image"], again["image"])
    np.testing.assert_array_equal(first["proprio"], again["proprio"])
    seeded.close()


def test_expert_succeeds_and_ignoring_the_target_fails(env):
    expert = ReacherExpert()
    for seed in range(4):
        infos, steps = rollout(env, expert, seed)
        assert steps == ROBOT_TASKS["reacher"].episode_steps
        assert infos[-1]["success"] and infos[-1]["distance"] < 0.005
        assert infos[0]["distance"] > infos[-1]["distance"]
    for seed in range(4):
        infos, _ = rollout(env, lambda _: np.zeros(2, np.float32), seed)
        assert not infos[-1]["success"]


def test_expert_action_is_bounded_and_smooth(env):
    expert = ReacherExpert()
    env.reset(seed=3)
    actions = []
    for _ in range(20):
        actions.append(expert(env))
        env.step(actions[-1])
    actions = np.array(actions)
    assert actions.dtype == np.float32 and actions.shape == (20, 2)
    assert np.all(np.abs(actions) <= 1.0)
    assert np.abs(np.diff(actions, axis=0)).max() < 0.6


@pytest.mark.parametrize("kwargs, name", [
    ({"task": "pusher"}, "task"),
    ({"image_size": 16}, "image_size"),
    ({"image_size": 300}, "image_size"),
    ({"image_size": 64.0}, "image_size"),
    ({"image_size": True}, "image_size"),
])
def test_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        make_robot_env(**kwargs)


def assert_repeatable_and_checked(env, seed: int) -> None:
    """The expert's episode from ``seed`` repeats exactly, target moves included, and the env passes check_env."""
    expert, steps = ReacherExpert(), env.task.episode_steps
    env.reset(seed=seed)
    first = [env.step(expert(env))[4]["distance"] for _ in range(steps)]
    env.reset(seed=seed)
    assert [env.step(expert(env))[4]["distance"] for _ in range(steps)] == first
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env)


def test_moving_target_jumps_once_in_its_window_and_is_drawn_there():
    spec = ROBOT_TASKS["reacher-moving"]
    env = make_robot_env("reacher-moving", image_size=SIZE)
    expert, jump_steps = ReacherExpert(), set()
    for seed in range(6):
        env.reset(seed=seed)
        before = env.unwrapped.data.body("target").xpos[:2].copy()
        infos, moves = [], []
        for step in range(1, spec.episode_steps + 1):
            observation, _, _, truncated, info = env.step(expert(env))
            infos.append(info)
            target = env.unwrapped.data.body("target").xpos[:2].copy()
            if not np.allclose(target, before):
                moves.append(step)
                assert np.linalg.norm(target - before) >= spec.jump_distance
                assert np.linalg.norm(target) < 0.2  # Reacher's target disc
                centroid = np.argwhere(red_pixels(observation["image"])).mean(axis=0) + 0.5
                np.testing.assert_allclose(centroid, pixel_of(target, SIZE), atol=1.0)  # the image shows it
            before = target
        assert truncated and len(moves) == 1 and spec.target_jump[0] <= moves[0] <= spec.target_jump[1]
        assert [info["target_jumps"] for info in infos] == [int(step >= moves[0]) for step in range(1, len(infos) + 1)]
        assert infos[-1]["success"]  # the scripted expert follows the jump
        jump_steps.add(moves[0])
    assert len(jump_steps) > 1
    assert_repeatable_and_checked(env, seed=4)
    env.close()


def test_a_policy_that_saw_only_the_first_target_fails_after_the_jump():
    """Going to where the target was at reset succeeds on reacher and (almost) never on reacher-moving."""
    successes = {}
    for task in ("reacher", "reacher-moving"):
        env = make_robot_env(task, image_size=SIZE)
        expert, wins = ReacherExpert(), 0
        for seed in range(6):
            env.reset(seed=seed)
            first_target = env.unwrapped.data.qpos[2:4].copy()
            done = False
            while not done:
                data = env.unwrapped.data
                now = data.qpos[2:4].copy()
                data.qpos[2:4] = first_target  # the expert steers to the remembered target
                mujoco.mj_forward(env.unwrapped.model, data)
                action = expert(env)
                data.qpos[2:4] = now
                mujoco.mj_forward(env.unwrapped.model, data)
                _, _, _, done, info = env.step(action)
            wins += info["success"]
        successes[task] = wins
        env.close()
    assert successes == {"reacher": 6, "reacher-moving": 0}


def test_drifting_target_circles_the_base_at_its_episode_speed_and_the_expert_follows():
    spec = ROBOT_TASKS["reacher-drifting"]
    env = make_robot_env("reacher-drifting", image_size=SIZE)
    expert, speeds = ReacherExpert(), []
    for seed in range(6):
        _, info = env.reset(seed=seed)
        speed = info["target_drift"]
        assert abs(speed) <= spec.target_drift
        start = env.unwrapped.data.body("target").xpos[:2].copy()
        for step in range(1, spec.episode_steps + 1):
            observation, _, _, truncated, info = env.step(expert(env))
            target = env.unwrapped.data.body("target").xpos[:2]
            turned = np.arctan2(target[1], target[0]) - np.arctan2(start[1], start[0])
            np.testing.assert_allclose(np.angle(np.exp(1j * (turned - step * speed))), 0.0, atol=1e-9)
            np.testing.assert_allclose(np.linalg.norm(target), np.linalg.norm(start), rtol=1e-9)
            assert info["target_drift"] == speed
        centroid = np.argwhere(red_pixels(observation["image"])).mean(axis=0) + 0.5
        np.testing.assert_allclose(centroid, pixel_of(target, SIZE), atol=1.0)  # the image shows where it went
        assert truncated and info["success"]  # the scripted expert tracks it
        speeds.append(speed)
    assert len(set(speeds)) == 6 and min(speeds) < 0 < max(speeds)
    assert_repeatable_and_checked(env, seed=3)
    env.close()


def test_appearing_target_is_hidden_until_its_step_then_shown_in_place_and_the_expert_waits_for_it():
    spec = ROBOT_TASKS["reacher-appearing"]
    env = make_robot_env("reacher-appearing", image_size=SIZE)
    expert, appear_steps = ReacherExpert(), set()
    for seed in range(6):
        observation, info = env.reset(seed=seed)
        data = env.unwrapped.data
        target, rest_pose = data.body("target").xpos[:2].copy(), data.qpos[:2].copy()
        assert not red_pixels(observation["image"]).any() and info["target_jumps"] == 0 and not env.target_visible
        shown = None
        for step in range(1, spec.episode_steps + 1):
            action = expert(env)
            assert action.any() == env.target_visible  # zero torque while nothing is seen
            observation, _, _, truncated, info = env.step(action)
            np.testing.assert_array_equal(data.body("target").xpos[:2], target)  # it appears, it does not move
            if shown is None and info["target_jumps"]:
                shown = step
                np.testing.assert_allclose(data.qpos[:2], rest_pose, atol=0.02)  # the arm waited at rest
            assert info["target_jumps"] == int(shown is not None) and env.target_visible == (shown is not None)
            assert red_pixels(observation["image"]).any() == (shown is not None)
        assert truncated and info["success"] and spec.target_jump[0] <= shown <= spec.target_jump[1]
        appear_steps.add(shown)
    assert len(appear_steps) > 1
    assert_repeatable_and_checked(env, seed=2)
    env.close()


def test_random_arm_pose_reset():
    env = make_robot_env("reacher-moving", image_size=SIZE)
    data = env.unwrapped.data
    rest_image, _ = env.reset(seed=7)
    rest_pose, rest_jump, target = data.qpos[:2].copy(), env._jump_step, data.qpos[2:4].copy()
    assert np.all(np.abs(rest_pose) <= 0.1)  # Reacher's own reset
    observation, info = env.reset(seed=7, options={"arm_pose": "random"})
    pose = data.qpos[:2].copy()
    assert np.abs(pose).max() > 0.1 and abs(pose[1]) <= 2.8 and np.all(data.qvel[:2] == 0)
    assert env._jump_step == rest_jump and np.array_equal(data.qpos[2:4], target)  # same episode otherwise
    np.testing.assert_allclose(observation["proprio"][:4], np.concatenate([np.cos(pose), np.sin(pose)]), atol=1e-6)
    assert not np.array_equal(observation["image"], rest_image["image"])
    assert info["distance"] == pytest.approx(np.linalg.norm(data.body("fingertip").xpos[:2] - target))
    again, _ = env.reset(seed=7, options={"arm_pose": "random"})
    np.testing.assert_array_equal(again["image"], observation["image"])  # reproducible per seed
    poses = [env.reset(seed=seed, options={"arm_pose": "random"}) and data.qpos[0] for seed in range(40)]
    assert min(poses) < -2 and max(poses) > 2  # the shoulder's whole circle
    with pytest.raises(ValueError, match="arm_pose"):
        env.reset(seed=7, options={"arm_pose": "folded"})
    env.close()


def test_jump_again_moves_the_target_repeatedly_with_gaps_in_range():
    spec = ROBOT_TASKS["reacher-moving"]
    env = make_robot_env("reacher-moving", image_size=SIZE)
    expert, counts = ReacherExpert(), set()
    for seed in range(6):
        env.reset(seed=seed, options={"jump_again": (12, 20)})
        target, moves = env.unwrapped.data.body("target").xpos[:2].copy(), []
        for step in range(1, spec.episode_steps + 1):
            info = env.step(expert(env))[4]
            if not np.allclose(env.unwrapped.data.body("target").xpos[:2], target):
                moves.append(step)
                target = env.unwrapped.data.body("target").xpos[:2].copy()
            assert info["target_jumps"] == len(moves)
        gaps = np.diff(moves)
        assert spec.target_jump[0] <= moves[0] <= spec.target_jump[1] and np.all((12 <= gaps) & (gaps <= 20))
        # 12 steps remain after the last jump, and it is the last only because a gap of up to 20 could leave fewer
        assert spec.episode_steps - 20 - 12 < moves[-1] <= spec.episode_steps - 12
        counts.add(len(moves))
    assert max(counts) >= 3
    env.reset(seed=0)  # the option lasts one episode
    assert max(env.step(expert(env))[4]["target_jumps"] for _ in range(spec.episode_steps)) == 1
    for bad in ((12,), (20, 12), (0, 5), (1.5, 3), "12,20"):
        with pytest.raises(ValueError, match="jump_again"):
            env.reset(seed=0, options={"jump_again": bad})
    env.close()
    still = make_robot_env("reacher", image_size=SIZE)
    with pytest.raises(ValueError, match="jump_again"):
        still.reset(seed=0, options={"jump_again": (12, 20)})
    still.close()


def test_positive_elbow_expert_keeps_the_elbow_on_one_side():
    env = make_robot_env("reacher-moving", image_size=SIZE)
    expert, elbows = ReacherExpert(elbow="positive"), []
    for seed in range(4):
        env.reset(seed=seed)
        for _ in range(ROBOT_TASKS["reacher-moving"].episode_steps):
            info = env.step(expert(env))[4]
            elbows.append(env.unwrapped.data.qpos[1])
        assert info["success"]
    assert np.mean(np.array(elbows) > -0.1) > 0.95
    with pytest.raises(ValueError, match="elbow"):
        ReacherExpert(elbow="left")
    env.close()
