"""The robot family's registration.

Its env ids, baseline specs, task specs, benchmark, commands and datasets.
"""

from adaptstep.core.registry import Family

# adaptstep data make NAME
DATASET_NAMES = ("reacher-demos", "reacher-moving-demos", "reacher-drifting-demos", "reacher-appearing-demos",
                 "pusht-demos", "pusht-image-demos", "metaworld-push-demos", "metaworld-pick-place-demos",
                 "metaworld-assembly-demos")

FAMILY = Family(
    name="robot",
    description="robot dual-system policies: when to refresh the slow System 2",
    envs={"adaptstep/DualSystem-v0": "adaptstep.policies.env:DualSystemEnv"},
    baselines={"refresh": "adaptstep.policies.baselines:refresh"},
    task_specs=("dual_system.yaml",),
    commands="adaptstep.policies.commands:add_commands",
    datasets={name: "adaptstep.policies.commands:make_dataset" for name in DATASET_NAMES},
    dataset_options="adaptstep.policies.commands:add_dataset_options",
    benchmark="adaptstep.policies.bench:RobotBenchmark",
    checkpoints={"dual-system": "adaptstep.policies.train:describe_dual_system",
                 "diffusion-policy": "adaptstep.policies.train:describe_diffusion_policy"},
)
