import pytest

from adaptstep.cli import main
from adaptstep.policies.demos import make_demos, save_demos
from adaptstep.policies.diffusion_policy import load_diffusion_policy
from adaptstep.policies.dual_system import load_dual_system
from adaptstep.policies.train import train_robot_policy


@pytest.fixture(scope="module")
def demos(tmp_path_factory):
    return save_demos(make_demos("reacher", episodes=2, image_size=32, seed=0),
                      tmp_path_factory.mktemp("demos") / "demos.hdf5")


def test_cli_config_options_reach_both_configs(demos, tmp_path):
    out = tmp_path / "dual.pt"
    main(["train-robot", "dual-system", "--demos", str(demos), "--out", str(out), "--steps", "2", "--batch-size", "4",
          "--video-steps", "2", "--video-lr", "1e-4", "--device", "cpu", "--no-progress", "--config", "history=4",
          "--config", "width=16", "--config", "heads=2", "--video-config", "width=8",
          "--video-config", "channel_mults=[1, 2]"])
    policy = load_dual_system(out, device="cpu")
    assert policy.config.history == 4 and policy.config.width == 16 and policy.system2_frames == 5
    assert policy.video_model.config.width == 8 and policy.video_model.config.channel_mults == (1, 2)
    assert policy.metadata["video_model"]["lr"] == 1e-4 and policy.metadata["lr"] == 3e-4
    baseline = tmp_path / "dp.pt"
    main(["train-robot", "diffusion-policy", "--demos", str(demos), "--out", str(baseline), "--steps", "2",
          "--batch-size", "4", "--device", "cpu", "--no-progress", "--config", "down_dims=[16, 32]"])
    assert load_diffusion_policy(baseline, device="cpu").config.down_dims == (16, 32)


@pytest.mark.parametrize("settings, name", [({"config": {"history": 3}}, "config"),  # a dual-system field
                                            ({"config": {"image_size": 64}}, "config"),  # fixed by the demos
                                            ({"video_config": {"depth": 2}}, "video_config")])
def test_unknown_config_keys_are_named(demos, tmp_path, settings, name):
    with pytest.raises(ValueError, match=f"{name} keys must be among"):
        train_robot_policy("diffusion-policy", demos, tmp_path / "dp.pt", steps=1, **settings)
