"""Schedules as JSON: derived VP quantities, atomic non-overwriting save, validating load, and the CLI."""

import json

import pytest
import torch

from adaptstep.cli import main
from adaptstep.diffusion.export import (
    export_schedule,
    load_schedule,
    noise_schedule_from_params,
    noise_schedule_params,
    save_schedule,
)
from adaptstep.nn.schedules import CosineVPSchedule, DiscreteVPSchedule, LinearVPSchedule
from adaptstep.nn.solvers import multistep_orders
from adaptstep.nn.timesteps import make_timesteps

SCHEDULES = [LinearVPSchedule(beta_min=0.2, beta_max=18.0, t_min=2e-3), CosineVPSchedule(s=0.01),
             DiscreteVPSchedule(num_steps=500)]


@pytest.fixture
def exported():
    schedule = DiscreteVPSchedule()
    times = make_timesteps("logsnr_uniform", schedule, 6)
    return export_schedule(times, multistep_orders(3, 6), schedule, model="gmm-2d", source="schedule:logsnr_uniform",
                           solver_options={"third_order": "exact"}, metadata={"seed": 3})


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: type(s).__name__)
def test_noise_schedule_params_rebuild_the_same_schedule(schedule):
    rebuilt = noise_schedule_from_params(json.loads(json.dumps(noise_schedule_params(schedule))))
    t = torch.linspace(schedule.t_min, schedule.t_max, 9, dtype=torch.float64)
    assert type(rebuilt) is type(schedule)
    assert torch.equal(rebuilt.lambda_(t), schedule.lambda_(t))


@pytest.mark.parametrize("schedule", SCHEDULES, ids=lambda s: type(s).__name__)
def test_exported_quantities_follow_the_noise_schedule(schedule):
    times = make_timesteps("edm", schedule, 5)
    record = export_schedule(times, [1, 2, 3, 3, 2], schedule)
    alphas, sigmas, edm_sigmas, lambdas = (torch.tensor(values, dtype=torch.float64) for values in (
        record.alphas, record.sigmas, record.edm_sigmas, record.lambdas))
    assert record.times == tuple(times.tolist()) and record.nfe == 5 and record.steps == 5
    torch.testing.assert_close(alphas**2 + sigmas**2, torch.ones(6, dtype=torch.float64), rtol=0, atol=1e-14)
    torch.testing.assert_close(edm_sigmas, sigmas / alphas, rtol=1e-13, atol=0)
    torch.testing.assert_close(lambdas, torch.log(alphas / sigmas), rtol=0, atol=1e-12)
    assert (record.timesteps is None) == (not isinstance(schedule, DiscreteVPSchedule))


def test_discrete_timesteps_are_diffusers_integer_indices():
    schedule = DiscreteVPSchedule()
    taus = torch.tensor([999, 700, 321, 45, 0])
    record = export_schedule(schedule.index_to_time(taus), [1, 2, 2, 1], schedule)
    assert record.timesteps == (999, 700, 321, 45, 0)
    assert all(isinstance(tau, int) for tau in record.timesteps)
    # off-grid times round to the nearest index: t = (τ + 1)/N with τ = 499.6 → 500
    off_grid = export_schedule([1.0, 500.6 / 1000, 1e-3], [1, 2], schedule)
    assert off_grid.timesteps == (999, 500, 0)


def test_round_trip_and_no_overwrite(tmp_path, exported):
    path = save_schedule(tmp_path / "schedule.json", exported)
    loaded = load_schedule(path)
    assert loaded == exported
    record = json.loads(path.read_text())
    assert record["format"] == "adaptstep-schedule" and record["noise_schedule"]["name"] == "discrete"
    assert record["timesteps"][0] == 999 and record["timesteps"][-1] == 0
    with pytest.raises(FileExistsError, match="overwrite"):
        save_schedule(path, export_schedule([1.0, 0.5, 0.001], [1, 2], DiscreteVPSchedule()))
    assert load_schedule(path) == exported
    replacement = export_schedule([1.0, 0.5, 0.001], [1, 2], DiscreteVPSchedule())
    save_schedule(path, replacement, overwrite=True)
    assert load_schedule(path) == replacement
    assert sorted(p.name for p in tmp_path.iterdir()) == ["schedule.json"]  # no temporary files left


def _corrupt(tmp_path, exported, change) -> str:
    path = save_schedule(tmp_path / "schedule.json", exported)
    record = json.loads(path.read_text())
    change(record)
    path.write_text(json.dumps(record))
    return str(path)


@pytest.mark.parametrize("key, change", [
    ("'orders'", lambda r: r.pop("orders")),
    ("'times'", lambda r: r.update(times=r["times"][:2] + r["times"][1:])),  # repeated time
    ("'times'", lambda r: r.update(times=r["times"][::-1])),  # increasing
    ("'orders'", lambda r: r.update(orders=r["orders"][:-1])),  # one order short
    ("'lambdas'", lambda r: r.update(lambdas=r["lambdas"][:-1])),
    ("'edm_sigmas'", lambda r: r.update(edm_sigmas=[2 * v for v in r["edm_sigmas"]])),
    ("'timesteps'", lambda r: r.update(timesteps=r["timesteps"][:-1])),
    ("'noise_schedule'", lambda r: r.update(noise_schedule={"name": "linear", "beta_min": -1.0})),
    ("'solver'", lambda r: r.update(solver="rk4")),
    ("'nfe'", lambda r: r.update(nfe=0)),
    ("'format'", lambda r: r.update(format_version=99)),
])
def test_load_rejects_bad_files_naming_file_and_key(tmp_path, exported, key, change):
    path = _corrupt(tmp_path, exported, change)
    with pytest.raises(ValueError, match="schedule.json") as error:
        load_schedule(path)
    assert key.strip("'") in str(error.value)


def test_load_rejects_invalid_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match="broken.json: not valid JSON"):
        load_schedule(path)


@pytest.mark.parametrize("kwargs, match", [
    ({"solver": "rk4"}, "solver must be one of"),
    ({"orders": [2, 2, 2]}, "warm-up"),
    ({"orders": [1, 2]}, "orders must hold 3 values"),
    ({"orders": [1, 2.0, 2]}, "orders must hold 3 values"),
    ({"times": [1.0, 0.5, 0.5, 1e-3]}, "strictly decreasing"),
    ({"times": [1.0, 0.5, 0.1, 1e-4]}, r"lie in \[t_min, t_max\]"),
    ({"nfe": 0}, "nfe must be"),
    ({"metadata": [1]}, "metadata must be"),
])
def test_export_rejects_bad_input(kwargs, match):
    arguments = {"times": [1.0, 0.5, 0.1, 1e-3], "orders": [1, 2, 2], "noise_schedule": LinearVPSchedule(), **kwargs}
    with pytest.raises(ValueError, match=match):
        export_schedule(**arguments)


def test_cli_export_schedule_writes_the_schedule_the_episode_took(tmp_path, capsys):
    out = tmp_path / "schedule.json"
    argv = ["export-schedule", "--controller", "schedule:logsnr_uniform,solver=dpmpp2m",
            "--env-kwarg", "model=gmm-2d,nfe=4,batch_size=8,reference_steps=16", "--seed", "5", "--out", str(out)]
    main(argv)
    assert "wrote" in capsys.readouterr().out
    record = load_schedule(out)
    expected = make_timesteps("logsnr_uniform", LinearVPSchedule(), 4)
    # the controller steers through the env's float32 action (a fraction of the remaining λ range)
    torch.testing.assert_close(torch.tensor(record.times, dtype=torch.float64), expected.cpu(), rtol=1e-6, atol=0)
    assert record.orders == (1, 2, 2, 1) == tuple(multistep_orders(2, 4))
    assert (record.nfe, record.model, record.solver) == (4, "gmm-2d", "dpmpp")
    assert record.source == "schedule:logsnr_uniform,solver=dpmpp2m"
    assert record.noise_schedule == noise_schedule_params(LinearVPSchedule())
    assert record.metadata["seed"] == 5 and record.metadata["error"] > 0
    assert record.metadata["env_id"] == "adaptstep/DiffusionSampler-v0"
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2 and "exists" in capsys.readouterr().err
    main(argv + ["--overwrite"])
    assert load_schedule(out) == record


@pytest.mark.parametrize("controller, solver, options", [
    ("schedule:time_uniform,solver=unipc3-bh1", "unipc-bh1", {}),
    ("schedule:time_uniform,solver=dpmpp3m", "dpmpp", {"solver_type": "dpmsolver", "third_order": "exact"}),
])
def test_cli_export_schedule_names_the_solver_it_stepped_with(tmp_path, controller, solver, options):
    out = tmp_path / "schedule.json"
    main(["export-schedule", "--controller", controller, "--env-kwarg",
          "model=gmm-2d,nfe=5,batch_size=8,reference_steps=16", "--seed", "5", "--out", str(out)])
    record = load_schedule(out)
    assert (record.solver, record.solver_options, record.steps) == (solver, options, 5)
