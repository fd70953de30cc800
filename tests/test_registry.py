"""The family registry and the env contract every registered env declares."""

import gymnasium as gym
import pytest

from adaptstep.core.contract import AdaptiveEnv, Metric
from adaptstep.core.process import Process
from adaptstep.core.registry import (
    Family,
    WallTimed,
    env_class,
    env_ids,
    families,
    family_of,
    load_object,
    register_family,
)
from adaptstep.core.wrappers import WallTime
from adaptstep.diffusion.process import SamplingProcess
from adaptstep.flow.chains import QuotaChains
from adaptstep.flow.sampler import FlowSampler
from adaptstep.flow.tasks import make_task
from adaptstep.threebody import ThreeBodyProcess, pythagorean

ENV_IDS = ("adaptstep/ThreeBody-v0", "adaptstep/DiffusionSampler-v0", "adaptstep/BudgetForcing-v0",
           "adaptstep/PlannerBudget-v0", "adaptstep/DualSystem-v0")


def test_the_installed_families_register_every_env_with_the_wall_time_wrapper():
    assert {"threebody", "sampler", "budget", "offline", "robot"} <= set(families())  # tests may add their own
    assert set(ENV_IDS) <= set(env_ids())
    for env_id in ENV_IDS:
        spec = gym.spec(env_id)
        if spec.vector_entry_point is None:
            assert [wrapper.name for wrapper in spec.additional_wrappers] == ["WallTime"]
        else:  # make_vec's vector_entry_point mode refuses additional wrappers: the entry point adds WallTime
            assert isinstance(spec.entry_point, WallTimed) and not spec.additional_wrappers


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
    references = [*declared.envs.values(), *declared.vector_envs.values(), *declared.baselines.values(),
                  *declared.datasets.values(),
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


def test_the_processes_of_the_sampler_search_and_three_body_families_follow_the_protocol():
    """(The planner's and the robot policy's processes are checked where their tests build them.)"""
    three_body = ThreeBodyProcess(pythagorean())
    three_body.advance(0.5, 0.01)
    assert isinstance(three_body, Process) and not three_body.done
    assert three_body.cost == three_body.force_evaluations and three_body.quality()["energy_error"] < 1e-6
    sampler = SamplingProcess("gmm-2d", 8, 0, 16)
    for t_next in (0.5, sampler.t_end):
        sampler.advance(t_next, 1)
    assert isinstance(sampler, Process) and sampler.done and sampler.cost == 2
    assert sampler.quality() == {"error": sampler.error()} and sampler.summary()["orders"] == [1, 1]
    task = make_task("gmm-2d-compositional", device="cpu")
    chains = QuotaChains(FlowSampler(task.flow, "ode", steps=2), task.verifier, 6, [(0, 0, 0)])
    while not chains.done:
        chains.advance([2], early_accept=False)
    assert isinstance(chains, Process) and chains.cost == 6 and chains.summary()["quotas"] == [[2, 2, 2]]
