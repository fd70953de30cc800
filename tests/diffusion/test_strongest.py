"""diffusers' schedulers as controllers, and the strongest-baseline selection on tuning noise."""

import gymnasium as gym
import pytest

import adaptstep  # noqa: F401  (registers the env ids)
from adaptstep.agents import parse_controller
from adaptstep.diffusion.diffusers_interop import diffusers_plan
from adaptstep.diffusion.process import load_sampler_model, noise_and_reference
from adaptstep.diffusion.strongest import candidate_specs, select_strongest
from adaptstep.evaluation import play_episode
from adaptstep.nn.solvers import sample

pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")  # diffusers on numpy 2
ENV_ID = "adaptstep/DiffusionSampler-v0"
SMALL = {"batch_size": 16, "reference_steps": 32}


@pytest.mark.parametrize(("spec", "solver", "settings"), [
    ("diffusers:unipc,order=3,solver_type=bh1,spacing=karras", "unipc3-bh1", {}),
    ("diffusers:dpmsolver++,order=3", "dpmpp3m", {"third_order": "dpmsolver"}),
    ("diffusers:dpmsolver++,order=2,spacing=lu_lambdas,lower_order_final=false", "dpmpp2m", {}),
])
@pytest.mark.parametrize("nfe", [5, 16])
def test_a_diffusers_row_is_its_schedule_and_orders_on_the_envs_solver(spec, solver, settings, nfe):
    pytest.importorskip("diffusers")
    controller = parse_controller(spec)
    env = gym.make(ENV_ID, nfe=nfe, **SMALL, **controller.env_overrides)
    row = play_episode(env, controller, seed=2)
    model, schedule = load_sampler_model("gmm-2d")
    x_T, reference = noise_and_reference("gmm-2d", 16, env.unwrapped._noise_seed, 32)
    kind, _, rest = spec.removeprefix("diffusers:").partition(",")
    options = dict(item.split("=") for item in rest.split(","))
    options = {key: int(value) if value.isdigit() else value == "true" if value in ("true", "false") else value
               for key, value in options.items()}
    times, orders = diffusers_plan(kind, nfe, schedule, **options)
    rule = "always" if options.get("lower_order_final", True) else "never"
    if kind == "dpmsolver++" and nfe >= 15:
        rule = "never"  # diffusers' DPM-Solver lowers below 15 steps only
    x, _ = sample(model, schedule, x_T, times, solver, lower_order_final=rule, **settings)
    assert row["cost"] == nfe and info_orders(env) == orders
    assert row["error"] == pytest.approx(float((x - reference).pow(2).mean().sqrt()), rel=1e-6)  # float32 actions


def info_orders(env) -> list[int]:
    return list(env.unwrapped.process.orders)


def test_candidates_cover_solvers_rules_and_diffusers_once_per_order_sequence():
    specs = candidate_specs(10)
    assert "schedule:time_uniform,solver=dpmpp3m,third_order=dpmsolver,lower_order_final=always" in specs
    assert "schedule:edm,solver=unipc3-bh2,lower_order_final=below10" in specs  # = never at 10 NFE
    assert not any(spec.endswith("lower_order_final=below15") for spec in specs)  # = always at 10 NFE
    assert "diffusers:unipc,order=3,solver_type=bh1,spacing=karras" in specs
    assert len(specs) == len(set(specs)) == 7 * 2 * 4 + 2 * 5 + 2 * 2 * 4


def test_the_strongest_baseline_is_chosen_on_tuning_seeds_disjoint_from_held_out_ones():
    candidates = {4: ["schedule:logsnr_uniform,solver=ddim", "schedule:logsnr_uniform,solver=dpmpp3m"]}
    winners, tuning = select_strongest([4], SMALL, heldout_seeds=range(100, 102), tuning_episodes=2,
                                       tuning_seed=200, candidates=candidates)
    assert winners == {4: "schedule:logsnr_uniform,solver=dpmpp3m"} and set(tuning["seed"]) == {200, 201}
    with pytest.raises(ValueError, match="disjoint"):
        select_strongest([4], SMALL, heldout_seeds=range(100, 102), tuning_episodes=2, tuning_seed=101,
                         candidates=candidates)


def test_an_off_env_candidate_is_scored_on_the_same_tuning_noise_and_wins_when_best():
    from adaptstep.diffusion.bench import off_env_rows

    seen = []

    def ipndm(noise, nfe):
        seen.append(dict(noise))
        return off_env_rows("gmm-2d", 16, noise, [nfe], False, ("ipndm",))

    candidates = {4: ["schedule:logsnr_uniform,solver=ddim"]}
    winners, tuning = select_strongest([4], {"batch_size": 16}, heldout_seeds=range(100, 102), tuning_episodes=2,
                                       tuning_seed=200, candidates=candidates, off_env=ipndm)
    harness = tuning[tuning["controller"] == candidates[4][0]]
    assert seen == [dict(zip(harness["seed"], harness["noise_seed"]))] and set(seen[0]) == {200, 201}
    scores = tuning.groupby("controller")["pooled_rmse"].first()
    assert len(scores) == 1 + 4 * 2 and scores.idxmin() == winners[4]  # DDIM and iPNDM-3/4 on 4 hand schedules
    assert winners[4].startswith("ipndm") and scores[winners[4]] < scores[candidates[4][0]]
    off = tuning[tuning["controller"] == winners[4]]
    assert dict(zip(off["seed"], off["noise_seed"])) == seen[0] and (off["cost"] == 4).all()
