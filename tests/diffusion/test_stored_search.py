"""Searched schedules stored in the zoo: written by ``adaptstep search-schedule``, shipped by ``zoo add``, played by
the ``search:`` baselines of the task spec without searching again."""

import pytest

import adaptstep.diffusion.search as search
from adaptstep.cli import main
from adaptstep.diffusion.stored_search import load_search, search_key, stored_search
from adaptstep.zoo import add_files

ENV_ID = "adaptstep/DiffusionSampler-v0"
TINY_ENV = ["model=gmm-2d", "nfe=3", "batch_size=16", "reference_steps=16"]
SPEC = "search:dp,solver=dpmpp2m,batches=2,grid_points=9"


def test_a_search_is_written_added_and_found_by_its_key(tmp_path):
    out = tmp_path / "dp.json"
    main(["search-schedule", "--controller", SPEC, *[f"--env-kwarg={kwarg}" for kwarg in TINY_ENV],
          "--out", str(out)])
    key, result = load_search(out)
    fresh = search.searched_schedule("dp", "gmm-2d", 3, "dpmpp2m", batch_size=16, batches=2, reference_steps=16,
                                     grid_points=9, stored=False)
    assert key == search_key("dp", "gmm-2d", 3, "dpmpp2m", batch_size=16, batches=2, reference_steps=16,
                             grid_points=9)
    assert key["options"]["coeff"] == list(search.GITS_COEFFS)  # the method's defaults are part of the key
    assert result.times == pytest.approx(fresh.times) and result.orders == fresh.orders
    folder = tmp_path / "zoo"
    command = f"adaptstep search-schedule --controller {SPEC} --out {{out}}/dp.json"
    record = add_files("dp-tiny", [out], [command], folder=folder)
    assert (record["kind"], record["env"], record["task"], record["algo"]) == (
        "schedule", ENV_ID, "gmm-2d, NFE 3", "search:dp,solver=dpmpp2m")
    assert record["train_seconds"] == round(result.seconds, 1)
    assert stored_search(key, folder) == result
    assert stored_search({**key, "batches": 3}, folder) is None  # another search is not this one
