"""The family registry and the env contract every registered env declares."""

import gymnasium as gym
import pytest

from adaptstep.core.contract import AdaptiveEnv, Metric
from adaptstep.core.registry import Family, env_class, env_ids, families, family_of, load_object, register_family
from adaptstep.core.wrappers import WallTime

ENV_IDS = ("adaptstep/ThreeBody-v0", "adaptstep/DiffusionSampler-v0", "adaptstep/BudgetForcing-v0",
           "adaptstep/PlannerBudget-v0", "adaptstep/DualSystem-v0")


def test_the_installed_families_register_every_env_with_the_wall_time_wrapper():
    assert {"threebody", "sampler", "budget", "offline", "robot"} <= set(families())  # tests may add their own
    assert set(ENV_IDS) <= set(env_ids())
    for env_id in ENV_IDS:
        assert [wrapper.name for wrapper in gym.spec(env_id).additional_wrappers] == ["WallTime"]


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_every_env_declares_the_contract(env_id):
    cls = env_class(env_id)
    assert issubclass(cls, AdaptiveEnv)
    assert cls.metrics and all(isinstance(metric, Metric) for metric in cls.metrics)
    assert cls.cost_unit
    assert cls.baseline_action is not AdaptiveEnv.baseline_action
    assert set(cls.timing_keys) == set() or cls.timings is not AdaptiveEnv.timings


@pytest.mark.parametrize("family", sorted(families()))
def test_every_reference_a_family_names_resolves(family):
    declared = families()[family]
    references = [*declared.envs.values(), *declared.baselines.values(), *declared.datasets.values(),
                  *filter(None, (declared.benchmark, declared.commands, declared.dataset_options))]
    for reference in references:
        assert callable(load_object(reference)), reference


def test_clashing_families_and_unknown_env_ids_are_refused():
    with pytest.raises(ValueError, match="family name 'threebody' is already registered"):
        register_family(Family(name="threebody"))
    with pytest.raises(ValueError, match="env id 'adaptstep/ThreeBody-v0' of family 'other' is already"):
        register_family(Family(name="other", envs={"adaptstep/ThreeBody-v0": "x:Y"}))
    with pytest.raises(ValueError, match="baseline 'ias15' of family 'other' is already"):
        register_family(Family(name="other", baselines={"ias15": "x:y"}))
    assert "other" not in families()
    with pytest.raises(ValueError, match="env id must be one of"):
        family_of("adaptstep/Nope-v0")


def test_wall_time_adds_the_env_timings_at_the_end_only():
    class Timed(AdaptiveEnv):
        timing_keys = ("seconds",)
        observation_space = action_space = gym.spaces.Discrete(2)

        def reset(self, *, seed=None, options=None):
            self.steps = 0
            return 0, {}

        def step(self, action):
            self.steps += 1
            return 0, 0.0, self.steps == 2, False, {}

        def timings(self):
            return {"seconds": 1.5 * self.steps}

    env = WallTime(Timed())
    env.reset()
    assert "seconds" not in env.step(0)[4]
    assert env.step(0)[4]["seconds"] == 3.0
