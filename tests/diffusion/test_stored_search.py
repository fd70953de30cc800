"""Searched schedules stored in the zoo: written by ``adaptstep search-schedule``, shipped by ``zoo add``, played by
the ``search:`` baselines of the task spec without searching again."""

import functools

import gymnasium as gym
import pytest

import adaptstep.diffusion.search as search
from adaptstep.agents.controllers import parse_controller
from adaptstep.cli import main
from adaptstep.diffusion.stored_search import load_search, search_key, stored_search
from adaptstep.specs import env_task_spec
from adaptstep.zoo import add_files, load_manifest

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


def _refused(method):
    """``method`` (its signature kept) failing the test if called."""
    @functools.wraps(method)
    def refuse(*args, **kwargs):
        raise AssertionError(f"{method.__name__} ran: a stored search was searched again")

    return refuse


def test_the_task_specs_search_baselines_play_the_shipped_searches(monkeypatch):
    """``evaluate --baselines`` on the sampler plays the zoo's searches: no search runs."""
    monkeypatch.setattr(search, "SEARCHES", {name: _refused(method) for name, method in search.SEARCHES.items()})
    search._searched.cache_clear()
    spec = env_task_spec(ENV_ID)
    specs = [baseline for baseline in spec["baselines"] if baseline.startswith("search:")]
    assert specs and sum(record["kind"] == "schedule" for record in load_manifest().values()) >= len(specs)
    for text in specs:
        controller = parse_controller(text, ENV_ID)
        env = gym.make(ENV_ID, **{**spec["kwargs"], **controller.env_overrides})
        try:
            controller.reset(env, seed=0)
        finally:
            env.close()
    search._searched.cache_clear()
