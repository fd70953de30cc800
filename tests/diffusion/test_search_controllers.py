"""The ``search`` baselines on adaptstep/DiffusionSampler-v0: specs, NFE, the searched times, env contract."""

import gymnasium as gym
import pytest

import adaptstep
from adaptstep.agents import parse_controller
from adaptstep.diffusion.search import SEARCH_SEED_OFFSET, searched_schedule

ENV_ID = "adaptstep/DiffusionSampler-v0"
ENV_KWARGS = {"model": "gmm-2d", "nfe": 4, "batch_size": 16, "reference_steps": 32}
SPECS = {"search:evolution,solver=dpmpp3m,generations=3,population=6,batches=2": ("evolution", "dpmpp3m",
                                                                                 {"generations": 3, "population": 6}),
         "search:dp,solver=dpmpp2m,batches=2,grid_points=21": ("dp", "dpmpp2m", {"grid_points": 21})}


def test_search_controllers_spend_exactly_nfe_on_the_searched_times():
    table = adaptstep.evaluate(ENV_ID, list(SPECS), episodes=2, env_kwargs=ENV_KWARGS, progress=False)
    assert len(table) == 4 and (table["cost"] == 4).all() and (table["steps"] == 4).all()
    assert (table["error"] > 0).all()
    for spec, (method, solver, options) in SPECS.items():
        result = searched_schedule(method, "gmm-2d", 4, solver, batch_size=16, batches=2, reference_steps=32,
                                   **options)
        controller = parse_controller(spec)
        env = gym.make(ENV_ID, **ENV_KWARGS, **controller.env_overrides)
        observation, info = env.reset(seed=5)
        controller.reset(env, seed=5)
        done = False
        while not done:
            observation, _, done, _, info = env.step(controller.act(observation))
        assert info["times"] == pytest.approx(list(result.times), rel=1e-5)
        assert info["orders"] == list(result.orders) and info["noise_seed"] < SEARCH_SEED_OFFSET


def test_a_search_controller_refuses_an_env_of_another_order():
    env = gym.make(ENV_ID, **ENV_KWARGS, order=2)
    env.reset(seed=0)
    with pytest.raises(ValueError, match="needs an env with order=3"):
        parse_controller("search:dp,solver=dpmpp3m").reset(env)


@pytest.mark.parametrize(("spec", "match"), [("search:annealing", "method must be one of"),
                                             ("search", "method must be one of"),
                                             ("search:dp,solver=heun", "solver must be one of"),
                                             ("search:dp,generations=3", "options of search 'dp' must be among")])
def test_bad_search_specs(spec, match):
    with pytest.raises(ValueError, match=match):
        parse_controller(spec)
