"""adaptstep enjoy: one rendered episode written as GIF or MP4; envs that do not render are one clear line."""

import imageio.v2 as imageio
import pytest

from adaptstep.cli import main
from adaptstep.enjoy import enjoy
from adaptstep.threebody.initial_conditions import YEAR

ENV = "adaptstep/ThreeBody-v0"


@pytest.mark.parametrize("suffix", [".gif", ".mp4"])
def test_a_video_holds_a_frame_per_step_and_the_reset(tmp_path, suffix):
    video = tmp_path / f"episode{suffix}"
    row = enjoy(ENV, "fixed:eta=0.03", env_kwargs={"t_end": float(YEAR)}, video=video, progress=False)
    assert row["frames"] == row["steps"] + 1
    if suffix == ".gif":
        assert len(imageio.mimread(video)) == row["frames"]
    else:
        assert video.stat().st_size > 0


def test_the_cli_prints_the_episode(tmp_path, capsys):
    main(["enjoy", ENV, "--controller", "fixed:eta=0.03", "--env-kwarg", f"t_end={float(YEAR)}", "--no-progress"])
    assert "fixed:eta=0.03: 10 steps" in capsys.readouterr().out


def test_envs_without_rendering_and_bad_suffixes_are_one_line(tmp_path):
    with pytest.raises(ValueError, match="does not render"):
        enjoy("adaptstep/BudgetForcing-v0", "random")
    with pytest.raises(ValueError, match="video must end in one of"):
        enjoy(ENV, "random", video=tmp_path / "x.avi")
