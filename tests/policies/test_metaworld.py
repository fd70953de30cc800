"""MetaWorld tasks; they need metaworld 3.1.1 and its mujoco 3.3.0, so they run in ``.venv-metaworld``
(``make test`` runs them there) and are skipped in the main environment."""

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

pytest.importorskip("metaworld")

from adaptstep.policies.demos import make_demos, save_demos  # noqa: E402
from adaptstep.policies.task import METAWORLD_TASKS, make_expert, make_robot_env  # noqa: E402

SIZE = 32


@pytest.mark.parametrize("seed", [0, 3])
def test_scripted_policy_succeeds_on_push(seed):
    env, expert = make_robot_env("metaworld-push", image_size=SIZE), make_expert("metaworld-push")
    observation, info = env.reset(seed=seed)
    assert not info["success"] and info["distance"] > 0.05
    for _ in range(env.get_wrapper_attr("task").episode_steps):
        observation, _, terminated, truncated, info = env.step(expert(env))
        if terminated or truncated:
            break
    env.close()
    assert terminated and info["success"] and info["distance"] <= 0.05


def test_observation_follows_metaworld_and_the_seed():
    env = make_robot_env("metaworld-pick-place", image_size=SIZE)
    first, _ = env.reset(seed=7)
    assert env.observation_space.contains(first) and first["proprio"].shape == (39,)
    np.testing.assert_array_equal(first["proprio"], env.get_wrapper_attr("state").astype(np.float32))
    np.testing.assert_array_equal(first["image"], env.get_wrapper_attr("scene").render()[::-1])
    again, _ = env.reset(seed=7)
    other, _ = env.reset(seed=8)
    np.testing.assert_array_equal(first["proprio"], again["proprio"])
    assert np.abs(first["proprio"][4:7] - other["proprio"][4:7]).max() > 1e-3  # the object moves with the seed
    assert np.abs(first["proprio"][-3:]).max() > 0  # the goal is observed
    env.close()


def test_every_task_constructs_and_bad_names_are_refused():
    assert set(METAWORLD_TASKS.values()) == {"push-v3", "pick-place-v3", "assembly-v3"}
    for task in METAWORLD_TASKS:
        env = make_robot_env(task, image_size=SIZE)
        observation, _ = env.reset(seed=0)
        assert observation["image"].shape == (SIZE, SIZE, 3) and env.action_space.shape == (4,)
        check_env(env, skip_render_check=True)
        env.close()
    with pytest.raises(ValueError, match="task must be one of .*'metaworld-push'"):
        make_robot_env("metaworld-reach")


def test_demos_policy_and_bench_through_the_robot_pipeline(tmp_path, tiny_pipeline):
    demos = make_demos("metaworld-push", episodes=1, image_size=SIZE, seed=0)
    assert demos.success.all() and demos.proprio.shape[1] == 39 and demos.actions.shape[1] == 4
    assert np.abs(demos.actions).max() <= 1.0
    tiny_pipeline("metaworld-push", save_demos(demos, tmp_path / "demos.hdf5"))
