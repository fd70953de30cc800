"""The threebody family's registration: its env ids, baseline specs, task specs and benchmark."""

from adaptstep.core.registry import Family

FAMILY = Family(
    name="threebody",
    description="the chaotic three-body problem: the integrator's time-step parameter per interval",
    envs={"adaptstep/ThreeBody-v0": "adaptstep.threebody.env:ThreeBodyEnv"},
    vector_envs={"adaptstep/ThreeBody-v0": "adaptstep.threebody.vector:ThreeBodyVectorEnv"},
    baselines={
        "ias15": "adaptstep.threebody.baselines:ias15",
        "aarseth": "adaptstep.threebody.baselines:aarseth",
        "whole": "adaptstep.threebody.baselines:whole",
        "oracle": "adaptstep.threebody.baselines:oracle",
    },
    task_specs=("threebody.yaml",),
    benchmark="adaptstep.threebody.bench:ThreeBodyBenchmark",
)
