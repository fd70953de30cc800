"""Diffusion sampling as a stepped process: VP noise schedules, exact Gaussian-mixture denoisers,
timestep schedules, PF-ODE solvers with exact NFE accounting and reference solutions, plus datasets,
a small neural denoiser, a digit classifier and distribution metrics (plain torch)."""

from adaptstep.diffusion.classifier import (
    DigitClassifier,
    HeldOutDigitClassifier,
    load_classifier,
    load_heldout_classifier,
    train_digit_classifier,
    train_heldout_classifier,
)
from adaptstep.diffusion.data import DATASETS, load_dataset
from adaptstep.diffusion.denoisers import CountingDenoiser, Denoiser, noise_from_x0, score_from_x0
from adaptstep.diffusion.device import resolve_device
from adaptstep.diffusion.diffusers_interop import make_scheduler, sample_with_scheduler
from adaptstep.diffusion.export import ExportedSchedule, export_schedule, load_schedule, save_schedule
from adaptstep.diffusion.gmm import GaussianMixture, gmm_2d, gmm_64d
from adaptstep.diffusion.metrics import endpoint_rmse, frechet_distance, median_bandwidth, mmd_rbf, sliced_wasserstein2
from adaptstep.diffusion.networks import DenoiserConfig, NeuralDenoiser
from adaptstep.diffusion.noise_schedules import (
    SCHEDULES,
    CosineVPSchedule,
    DiscreteVPSchedule,
    LinearVPSchedule,
    NoiseSchedule,
    make_noise_schedule,
)
from adaptstep.diffusion.pretrained import (
    pretrained_classifier,
    pretrained_denoiser,
    pretrained_flow,
    pretrained_heldout_classifier,
)
from adaptstep.diffusion.quality import DistributionMetrics, distribution_metrics
from adaptstep.diffusion.reference import reference_gap, reference_solution
from adaptstep.diffusion.search import (
    SEARCH_SEED_OFFSET,
    SearchResult,
    dp_search,
    evolutionary_search,
    searched_schedule,
)
from adaptstep.diffusion.solvers import (
    SOLVERS,
    DPMSolverPlusPlus,
    EulerSolver,
    HeunSolver,
    dpm_solver_adaptive,
    multistep_orders,
    sample,
)
from adaptstep.diffusion.time_shift import TimeShift
from adaptstep.diffusion.timesteps import TIMESTEPS, make_timesteps
from adaptstep.diffusion.training import load_denoiser, train_denoiser

__all__ = [
    "DATASETS",
    "SCHEDULES",
    "SEARCH_SEED_OFFSET",
    "SOLVERS",
    "TIMESTEPS",
    "TimeShift",
    "CosineVPSchedule",
    "CountingDenoiser",
    "DPMSolverPlusPlus",
    "Denoiser",
    "DenoiserConfig",
    "DigitClassifier",
    "DistributionMetrics",
    "DiscreteVPSchedule",
    "EulerSolver",
    "ExportedSchedule",
    "GaussianMixture",
    "HeldOutDigitClassifier",
    "HeunSolver",
    "LinearVPSchedule",
    "NeuralDenoiser",
    "NoiseSchedule",
    "SearchResult",
    "distribution_metrics",
    "dp_search",
    "dpm_solver_adaptive",
    "endpoint_rmse",
    "evolutionary_search",
    "export_schedule",
    "frechet_distance",
    "gmm_2d",
    "gmm_64d",
    "load_classifier",
    "load_heldout_classifier",
    "load_dataset",
    "load_denoiser",
    "load_schedule",
    "make_scheduler",
    "make_noise_schedule",
    "make_timesteps",
    "median_bandwidth",
    "mmd_rbf",
    "multistep_orders",
    "noise_from_x0",
    "pretrained_classifier",
    "pretrained_denoiser",
    "pretrained_flow",
    "pretrained_heldout_classifier",
    "reference_gap",
    "reference_solution",
    "resolve_device",
    "sample",
    "sample_with_scheduler",
    "save_schedule",
    "score_from_x0",
    "searched_schedule",
    "sliced_wasserstein2",
    "train_denoiser",
    "train_digit_classifier",
    "train_heldout_classifier",
]
