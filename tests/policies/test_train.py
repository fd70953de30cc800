import pytest

from adaptstep.cli import main
from adaptstep.policies.demos import load_demos, make_demos, save_demos
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


def test_dagger_episodes_then_a_warm_start_on_both_sets(tmp_path, capsys):
    moving = save_demos(make_demos("reacher-moving", episodes=1, image_size=32, reaction_delay=2),
                        tmp_path / "moving.hdf5")
    policy = tmp_path / "dual.pt"
    main(["train-robot", "dual-system", "--demos", str(moving), "--out", str(policy), "--steps", "2",
          "--batch-size", "4", "--video-steps", "2", "--device", "cpu", "--no-progress", "--config", "history=4",
          "--config", "width=16", "--config", "heads=2", "--video-config", "width=8",
          "--video-config", "channel_mults=[1, 2]"])
    labelled = tmp_path / "dagger.hdf5"
    main(["data", "dagger", "--policy", str(policy), "--episodes", "2", "--refresh", "1,4", "--jump-again", "12,20",
          "--out", str(labelled), "--device", "cpu", "--no-progress"])
    assert "2 episodes, 160 steps labelled by the expert" in capsys.readouterr().out
    dagger = load_demos(labelled)
    assert dagger.metadata["dagger"]["refresh_every"] == [1, 4] and "--refresh 1,4" in dagger.metadata["command"]
    warm = tmp_path / "warm.pt"
    main(["train-robot", "dual-system", "--demos", str(moving), "--demos", str(labelled), "--init", str(policy),
          "--out", str(warm), "--steps", "2", "--batch-size", "4", "--device", "cpu", "--no-progress"])
    trained = load_dual_system(warm, device="cpu")
    assert trained.metadata["demos"] == [str(moving), str(labelled)] and trained.metadata["episodes"] == 3
    assert trained.metadata["init"] == str(policy) and trained.config == load_dual_system(policy).config
    capsys.readouterr()
    with pytest.raises(SystemExit):
        main(["data", "dagger", "--policy", str(policy), "--out", str(labelled)])
    assert "exists; pass --overwrite" in capsys.readouterr().err
    with pytest.raises(ValueError, match="init"):
        train_robot_policy("diffusion-policy", moving, tmp_path / "dp.pt", steps=1, init=policy)
