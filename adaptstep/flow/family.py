"""The budget family's registration: its env ids, baseline specs, task specs and benchmark."""

from adaptstep.core.registry import Family

FAMILY = Family(
    name="budget",
    description="inference-time search for flow models: the NFE quota of every denoising step (budget forcing)",
    envs={"adaptstep/BudgetForcing-v0": "adaptstep.flow.env:BudgetForcingEnv"},
    baselines={"budget": "adaptstep.flow.baselines:budget"},
    task_specs=("budget.yaml",),
    benchmark="adaptstep.flow.bench:BudgetBenchmark",
)
