"""Diffusion sampling as a stepped process whose next timestep and solver order are chosen at every step.

The package holds the sampler's process and its models (the shipped digits denoiser, a small neural denoiser and its
training), reference solutions, searched schedules, their export to diffusers, and distribution metrics (plain
torch). The noise schedules, timesteps, solvers and Gaussian mixtures it steps through are the shared
``adaptstep.nn`` toolkit.
"""

from adaptstep.core.lazy import lazy_exports

EXPORTS = {
    "make_scheduler": "adaptstep.diffusion.diffusers_interop",
    "sample_with_scheduler": "adaptstep.diffusion.diffusers_interop",
    "ExportedSchedule": "adaptstep.diffusion.export",
    "export_schedule": "adaptstep.diffusion.export",
    "load_schedule": "adaptstep.diffusion.export",
    "save_schedule": "adaptstep.diffusion.export",
    "endpoint_rmse": "adaptstep.diffusion.metrics",
    "frechet_distance": "adaptstep.diffusion.metrics",
    "median_bandwidth": "adaptstep.diffusion.metrics",
    "mmd_rbf": "adaptstep.diffusion.metrics",
    "sliced_wasserstein2": "adaptstep.diffusion.metrics",
    "DenoiserConfig": "adaptstep.diffusion.networks",
    "NeuralDenoiser": "adaptstep.diffusion.networks",
    "pretrained_denoiser": "adaptstep.diffusion.pretrained",
    "DistributionMetrics": "adaptstep.diffusion.quality",
    "distribution_metrics": "adaptstep.diffusion.quality",
    "reference_gap": "adaptstep.diffusion.reference",
    "reference_solution": "adaptstep.diffusion.reference",
    "SEARCH_SEED_OFFSET": "adaptstep.diffusion.search",
    "SearchResult": "adaptstep.diffusion.search",
    "dp_search": "adaptstep.diffusion.search",
    "evolutionary_search": "adaptstep.diffusion.search",
    "searched_schedule": "adaptstep.diffusion.search",
    "load_denoiser": "adaptstep.diffusion.training",
    "train_denoiser": "adaptstep.diffusion.training",
}
__all__ = sorted(EXPORTS)
__getattr__ = lazy_exports(__name__, EXPORTS)
