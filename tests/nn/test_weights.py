import json
import shutil

import pytest
import torch

from adaptstep.diffusion import pretrained
from adaptstep.diffusion.networks import DenoiserConfig
from adaptstep.diffusion.pretrained import DENOISER_FILES, pretrained_denoiser
from adaptstep.flow import pretrained as flow_pretrained
from adaptstep.flow.pretrained import FLOW_FILES, pretrained_flow
from adaptstep.nn import classifier
from adaptstep.nn.classifier import (
    CLASSIFIER_FILE,
    HELDOUT_CLASSIFIER_FILE,
    accuracy,
    pretrained_classifier,
    pretrained_heldout_classifier,
)
from adaptstep.nn.data import load_dataset
from adaptstep.nn.weights import (
    MANIFEST_NAME,
    WEIGHTS_DIR,
    file_sha256,
    load_manifest,
    main,
    rebuild,
    shipped_files,
    weights_sha256,
)

FILES = shipped_files()


def test_shipped_files_are_small_and_match_the_manifest():
    files = load_manifest()["files"]
    assert list(files) == list(FILES)
    for relative, record in files.items():
        path = WEIGHTS_DIR / relative
        assert file_sha256(path) == record["sha256"] and path.stat().st_size == record["bytes"] < 1_000_000
    assert weights_sha256(pretrained_classifier(device="cpu")) == files[CLASSIFIER_FILE]["weights_sha256"]
    assert weights_sha256(pretrained_denoiser(device="cpu")) == files[DENOISER_FILES["digits"]]["weights_sha256"]
    assert weights_sha256(pretrained_flow(device="cpu")) == files[FLOW_FILES["digits"]]["weights_sha256"]
    heldout = pretrained_heldout_classifier(device="cpu")
    assert weights_sha256(heldout) == files[HELDOUT_CLASSIFIER_FILE]["weights_sha256"]
    assert main([]) == 0  # the command-line check agrees


def test_classifier_reaches_its_recorded_test_accuracy():
    recorded = load_manifest()["files"][CLASSIFIER_FILE]["test_accuracy"]
    x, labels = load_dataset("digits", split="held-out")
    assert recorded >= 0.95
    assert accuracy(pretrained_classifier(device="cpu"), x, labels) >= recorded - 0.01  # ±3 of 360 images


def test_digits_denoiser_denoises_held_out_digits():
    model = pretrained_denoiser("digits", device="cpu")
    assert model.config == DenoiserConfig(dim=64, width=128, depth=3, schedule="linear")
    assert model.metadata["data"] == "digits"
    x0, _ = load_dataset("digits", split="held-out")
    generator = torch.Generator().manual_seed(0)
    # RMSE of x̂0 against the clean image, as a fraction of the RMSE σ_t/α_t of the identity estimate x_t/α_t;
    # an untrained network does no better than the identity; the trained one measured 1.00, 0.68, 0.51, 0.31.
    for t, bound in ((model.schedule.t_min, 1.1), (0.05, 0.8), (0.1, 0.65), (0.3, 0.4)):
        t = torch.tensor(t, dtype=torch.float64)
        alpha, sigma = model.schedule.alpha(t).item(), model.schedule.sigma(t).item()
        noise = torch.randn(x0.shape, generator=generator)
        x_hat = model.predict_x0(alpha * x0 + sigma * noise, t)
        assert (x_hat - x0).square().mean().sqrt().item() <= bound * sigma / alpha
    assert (x_hat - x0).square().mean().sqrt().item() < 0.5  # at σ_t = 0.78 still well inside the [−1, 1] range


def test_loading_rejects_bad_names_and_altered_files(tmp_path):
    with pytest.raises(ValueError, match=r"name must be one of \['digits'\]"):
        pretrained_denoiser("mnist")
    shutil.copytree(WEIGHTS_DIR, tmp_path, dirs_exist_ok=True)
    with (tmp_path / CLASSIFIER_FILE).open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(RuntimeError, match="sha256"):
        pretrained_classifier(device="cpu", folder=tmp_path)
    assert main(["--out", str(tmp_path)]) == 1
    pretrained_denoiser(device="cpu", folder=tmp_path)  # the untouched file still loads


@pytest.fixture
def tiny_settings(monkeypatch):
    """Settings that train every shipped model in well under a second."""
    tiny = {"steps": 30, "width": 16, "depth": 1}
    monkeypatch.setitem(pretrained.DENOISER_SETTINGS, "digits", {**pretrained.DENOISER_SETTINGS["digits"], **tiny})
    monkeypatch.setitem(flow_pretrained.FLOW_SETTINGS, "digits", {**flow_pretrained.FLOW_SETTINGS["digits"], **tiny})
    monkeypatch.setattr(classifier, "CLASSIFIER_SETTINGS", {**classifier.CLASSIFIER_SETTINGS, "steps": 5})
    monkeypatch.setattr(classifier, "HELDOUT_CLASSIFIER_SETTINGS",
                        {**classifier.HELDOUT_CLASSIFIER_SETTINGS, "steps": 5})


def test_rebuild_is_reproducible_and_refuses_to_overwrite(tmp_path, tiny_settings):
    first = rebuild(tmp_path / "a", progress=False)
    second = rebuild(tmp_path / "b", progress=False)
    assert load_manifest(tmp_path / "a") == first and list(first["files"]) == list(FILES)
    for relative, record in first["files"].items():
        assert record["weights_sha256"] == second["files"][relative]["weights_sha256"]
        assert record["arguments"]["device"] == "cpu" and record["final_loss"] > 0
    assert first["files"][DENOISER_FILES["digits"]]["arguments"]["steps"] == 30
    assert pretrained_denoiser(device="cpu", folder=tmp_path / "a").config.width == 16
    assert pretrained_flow(device="cpu", folder=tmp_path / "a").config.width == 16
    assert first["files"][HELDOUT_CLASSIFIER_FILE]["arguments"]["steps"] == 5
    with pytest.raises(FileExistsError, match="overwrite"):
        rebuild(tmp_path / "a", progress=False)
    with pytest.raises(SystemExit):
        main(["--rebuild", "--out", str(tmp_path / "a")])
    (tmp_path / "a" / MANIFEST_NAME).unlink()
    with pytest.raises(SystemExit):  # a folder without a manifest: a usage error, not a traceback
        main(["--out", str(tmp_path / "a")])
    rebuild(tmp_path / "a", overwrite=True, progress=False)
    assert load_manifest(tmp_path / "a")["files"].keys() == first["files"].keys()


def test_rebuild_only_some_files_merges_them_into_the_manifest(tmp_path, tiny_settings, monkeypatch):
    folder = tmp_path / "a"
    first = rebuild(folder, progress=False)
    denoiser_bytes = (folder / DENOISER_FILES["digits"]).read_bytes()
    flow, heldout = FLOW_FILES["digits"], HELDOUT_CLASSIFIER_FILE
    new = [heldout, flow]
    with pytest.raises(FileExistsError, match="overwrite"):
        rebuild(folder, progress=False, only=new)
    monkeypatch.setitem(flow_pretrained.FLOW_SETTINGS, "digits", {**flow_pretrained.FLOW_SETTINGS["digits"], "seed": 1})
    merged = rebuild(folder, overwrite=True, progress=False, only=new)
    assert load_manifest(folder) == merged and list(merged["files"]) == list(FILES)
    for relative in (CLASSIFIER_FILE, DENOISER_FILES["digits"]):  # untouched records and files
        assert merged["files"][relative] == first["files"][relative]
    assert (folder / DENOISER_FILES["digits"]).read_bytes() == denoiser_bytes
    same_settings, new_seed = merged["files"][heldout], merged["files"][flow]
    assert same_settings["weights_sha256"] == first["files"][heldout]["weights_sha256"]
    assert new_seed["arguments"]["seed"] == 1 and new_seed["weights_sha256"] != first["files"][flow]["weights_sha256"]
    assert main(["--out", str(folder)]) == 0  # every file matches the merged manifest
    with pytest.raises(ValueError, match="only must name one or more of"):
        rebuild(folder, overwrite=True, only=["flow.pt"])
    with pytest.raises(SystemExit):
        main(["--rebuild", "--only", "flow.pt", "--out", str(folder)])
    with pytest.raises(FileNotFoundError, match="manifest.json"):  # nothing to merge into
        rebuild(tmp_path / "empty", only=new)
    manifest = load_manifest(folder)
    (folder / MANIFEST_NAME).write_text(json.dumps({**manifest, "torch": "0.0"}))
    with pytest.raises(ValueError, match="records"):  # a merged manifest must describe one torch version
        rebuild(folder, overwrite=True, progress=False, only=new)
