"""The offline family's registration: its env ids, baseline specs, task specs, benchmark, commands and datasets."""

from adaptstep.core.registry import Family

# the NAMEs of ``adaptstep data make NAME``
DATASET_NAMES = ("maze2d-umaze-v1", "maze2d-medium-v1", "maze2d-large-v1", "maze2d-umaze", "maze2d-medium",
                 "maze2d-large", "hopper-medium", "hopper-expert")

FAMILY = Family(
    name="offline",
    description="offline-RL planning: a diffusion planner's denoising budget at every replanning point",
    envs={"adaptstep/PlannerBudget-v0": "adaptstep.planning.env:PlannerBudgetEnv"},
    baselines={},
    task_specs=("planner.yaml",),
    commands="adaptstep.planning.commands:add_commands",
    datasets={name: "adaptstep.planning.commands:make_dataset" for name in DATASET_NAMES},
    dataset_options="adaptstep.planning.commands:add_dataset_options",
    benchmark="adaptstep.planning.bench:OfflineBenchmark",
    checkpoints={"planner": "adaptstep.planning.planners:describe_planner"},
)
