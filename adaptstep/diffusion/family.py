"""The sampler family's registration: its env ids, baseline specs, task specs, benchmark and commands."""

from adaptstep.core.registry import Family

FAMILY = Family(
    name="sampler",
    description="diffusion sampling: the next timestep and solver order of a DPM-Solver++ or UniPC sampler",
    envs={"adaptstep/DiffusionSampler-v0": "adaptstep.diffusion.env:DiffusionSamplerEnv"},
    vector_envs={"adaptstep/DiffusionSampler-v0": "adaptstep.diffusion.vector:DiffusionSamplerVectorEnv"},
    baselines={"schedule": "adaptstep.diffusion.baselines:schedule", "search": "adaptstep.diffusion.baselines:search",
               "diffusers": "adaptstep.diffusion.baselines:diffusers"},
    task_specs=("diffusion.yaml",),
    commands="adaptstep.diffusion.commands:add_commands",
    benchmark="adaptstep.diffusion.bench:SamplerBenchmark",
    checkpoints={"schedule": "adaptstep.diffusion.stored_search:describe_schedule"},
)
