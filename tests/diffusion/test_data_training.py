import pytest
import torch
from sklearn.datasets import load_digits

from adaptstep.diffusion.networks import DenoiserConfig, NeuralDenoiser
from adaptstep.diffusion.training import fit_denoiser, load_denoiser, save_denoiser, train_denoiser
from adaptstep.nn.classifier import (
    FEATURE_DIM,
    accuracy,
    load_classifier,
    save_classifier,
    train_digit_classifier,
)
from adaptstep.nn.data import DIGITS_HELD_OUT, TRAINING_DATASETS, load_dataset

TINY = dict(steps=200, batch_size=128, width=64, depth=2, device="cpu", progress=False)


@pytest.mark.parametrize("name, dim, bound", [("digits", 64, 1.0), ("two-moons", 2, 3.0), ("checkerboard", 2, 1.0)])
def test_datasets_have_expected_shapes_ranges_and_are_seeded(name, dim, bound):
    x, labels = load_dataset(name, n=300, seed=1)
    assert x.shape == (300, dim) and x.dtype == torch.float32
    assert float(x.abs().max()) <= bound
    assert torch.equal(x, load_dataset(name, n=300, seed=1)[0])
    assert not torch.equal(x, load_dataset(name, n=300, seed=2)[0])
    assert (labels is None) == (name == "checkerboard")
    if labels is not None:
        assert labels.shape == (300,) and labels.dtype == torch.int64


def test_digits_split_is_fixed_and_disjoint():
    train, train_labels = load_dataset("digits")
    held_out, held_out_labels = load_dataset("digits", split="held-out", seed=5)
    assert len(train) + len(held_out) == 1797 and len(held_out) == DIGITS_HELD_OUT
    assert float(train.min()) == -1.0 and float(train.max()) == 1.0
    assert set(train_labels.tolist()) == set(held_out_labels.tolist()) == set(range(10))
    every_image = torch.as_tensor(load_digits().data / 8.0 - 1.0, dtype=torch.float32)
    assert torch.equal(torch.sort(torch.cat([train, held_out]).sum(1)).values, torch.sort(every_image.sum(1)).values)
    assert torch.equal(train, load_dataset("digits", seed=7)[0])  # the split ignores seed


def test_synthetic_sets_are_standardised_or_on_the_board():
    moons, _ = load_dataset("two-moons", n=20_000)
    assert moons.mean(0).abs().max() < 0.05 and (moons.std(0) - 1).abs().max() < 0.05
    board, _ = load_dataset("checkerboard", n=20_000)
    cells = ((board + 1) // 0.5).long()
    assert bool(((cells[:, 0] + cells[:, 1]) % 2 == 0).all())
    assert len(torch.unique(cells[:, 0] * 4 + cells[:, 1])) == 8


def test_load_dataset_rejects_bad_arguments():
    with pytest.raises(ValueError, match=str(list(TRAINING_DATASETS)).replace("[", r"\[").replace("]", r"\]")):
        load_dataset("mnist")
    with pytest.raises(ValueError, match="split"):
        load_dataset("digits", split="test")
    with pytest.raises(ValueError, match="n must"):
        load_dataset("two-moons", n=0)
    with pytest.raises(ValueError, match="at most"):
        load_dataset("digits", n=5000)


def test_predict_x0_is_consistent_with_the_noise_prediction():
    torch.manual_seed(0)
    model = NeuralDenoiser(DenoiserConfig(dim=3, width=32, depth=2, schedule="cosine"))
    for block in model.blocks:  # the zero-initialised output layers would make every block the identity
        torch.nn.init.normal_(block.outer.weight, std=0.1)
    x = torch.randn(5, 3, dtype=torch.float64)
    for t in (torch.tensor(0.3, dtype=torch.float64), torch.linspace(0.01, 0.9, 5, dtype=torch.float64)):
        x0 = model.predict_x0(x, t)
        alpha, sigma = model.schedule.alpha(t), model.schedule.sigma(t)
        if t.ndim:
            alpha, sigma = alpha[:, None], sigma[:, None]
        assert x0.dtype == torch.float64
        torch.testing.assert_close((x - alpha * x0) / sigma, model(x, t), rtol=1e-6, atol=1e-6)
    with pytest.raises(ValueError, match="t must"):
        model(x, torch.zeros(4))
    with pytest.raises(ValueError, match="schedule"):
        DenoiserConfig(dim=2, schedule="quadratic")


def test_training_reduces_the_loss_and_the_checkpoint_reloads_exactly(tmp_path):
    x, _ = load_dataset("two-moons", n=2000)
    config = DenoiserConfig(dim=2, width=64, depth=2)
    model, losses = fit_denoiser(x, config, steps=300, batch_size=128, device="cpu", progress=False)
    assert len(losses) == 300
    first, last = sum(losses[:50]) / 50, sum(losses[-50:]) / 50
    assert last < 0.75 * first
    path = save_denoiser(model, tmp_path / "model.pt", {"note": "test"})
    loaded = load_denoiser(path, device="cpu")
    assert loaded.metadata == {"note": "test"} and not loaded.training
    probe, t = torch.randn(64, 2), torch.rand(64) * 0.9 + 0.05
    assert torch.equal(loaded.predict_x0(probe, t), model.predict_x0(probe, t))


def test_train_denoiser_writes_a_checkpoint_and_refuses_to_overwrite(tmp_path):
    path = train_denoiser("checkerboard", tmp_path, **TINY)
    assert path == tmp_path / "denoiser.pt"
    model = load_denoiser(tmp_path, device="cpu")
    metadata = model.metadata
    assert metadata["data"] == "checkerboard" and metadata["steps"] == 200 and metadata["seconds"] > 0
    assert metadata["final_loss"] < metadata["loss_curve"][0]
    assert model.config == DenoiserConfig(dim=2, width=64, depth=2, schedule="linear")
    with pytest.raises(FileExistsError, match="overwrite"):
        train_denoiser("checkerboard", tmp_path, **TINY)
    train_denoiser("checkerboard", tmp_path, overwrite=True, **TINY)  # same seed: the same weights again
    probe = torch.randn(8, 2)
    t = torch.tensor(0.5)
    assert torch.equal(load_denoiser(tmp_path, device="cpu").predict_x0(probe, t), model.predict_x0(probe, t))


@pytest.mark.parametrize(
    "kwargs, match",
    [(dict(steps=0), "steps"), (dict(batch_size=-1), "batch_size"), (dict(lr=0.0), "lr"),
     (dict(schedule="quadratic"), "schedule"), (dict(device="tpu:x"), "device")],
)
def test_train_denoiser_rejects_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        train_denoiser("two-moons", tmp_path, **{**TINY, **kwargs})
    with pytest.raises(ValueError, match="name must"):
        train_denoiser("mnist", tmp_path, **TINY)


def test_digit_classifier_beats_chance_and_round_trips(tmp_path):
    model = train_digit_classifier(seed=0, steps=200, device="cpu")
    x, labels = load_dataset("digits", split="held-out")
    assert accuracy(model, x, labels) > 0.95
    assert model.features(x).shape == (len(x), FEATURE_DIM)
    loaded = load_classifier(save_classifier(model, tmp_path / "classifier.pt"), device="cpu")
    assert torch.equal(loaded.features(x), model.features(x))
