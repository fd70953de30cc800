"""Diffusion sampling as a stepped process: the sampler's process and its models (the shipped digits denoiser, a
small neural denoiser and its training), reference solutions, searched schedules, their export to diffusers, and
distribution metrics (plain torch). The noise schedules, timesteps, solvers and Gaussian mixtures it steps through
are the shared ``adaptstep.nn`` toolkit."""

from adaptstep.diffusion.diffusers_interop import make_scheduler, sample_with_scheduler
from adaptstep.diffusion.export import ExportedSchedule, export_schedule, load_schedule, save_schedule
from adaptstep.diffusion.metrics import endpoint_rmse, frechet_distance, median_bandwidth, mmd_rbf, sliced_wasserstein2
from adaptstep.diffusion.networks import DenoiserConfig, NeuralDenoiser
from adaptstep.diffusion.pretrained import pretrained_denoiser
from adaptstep.diffusion.quality import DistributionMetrics, distribution_metrics
from adaptstep.diffusion.reference import reference_gap, reference_solution
from adaptstep.diffusion.search import (
    SEARCH_SEED_OFFSET,
    SearchResult,
    dp_search,
    evolutionary_search,
    searched_schedule,
)
from adaptstep.diffusion.training import load_denoiser, train_denoiser

__all__ = [
    "SEARCH_SEED_OFFSET",
    "DenoiserConfig",
    "DistributionMetrics",
    "ExportedSchedule",
    "NeuralDenoiser",
    "SearchResult",
    "distribution_metrics",
    "dp_search",
    "endpoint_rmse",
    "evolutionary_search",
    "export_schedule",
    "frechet_distance",
    "load_denoiser",
    "load_schedule",
    "make_scheduler",
    "median_bandwidth",
    "mmd_rbf",
    "pretrained_denoiser",
    "reference_gap",
    "reference_solution",
    "sample_with_scheduler",
    "save_schedule",
    "searched_schedule",
    "sliced_wasserstein2",
    "train_denoiser",
]
