"""Diffusion sampling as a stepped process: one batch integrated from noise to data, one solver step at a time.

Cost is NFE; quality is the endpoint RMSE against a reference solution of the probability-flow ODE from the
same initial noise. Models and references are cached, so every controller evaluated on the same noise seeds
in one process pays for a reference once.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import torch

from adaptstep.diffusion.metrics import endpoint_rmse, mode_switches, sample_errors
from adaptstep.diffusion.pretrained import DENOISER_FILES, pretrained_denoiser
from adaptstep.diffusion.reference import reference_solution
from adaptstep.diffusion.training import load_denoiser
from adaptstep.nn.denoisers import Denoiser
from adaptstep.nn.gmm import gmm_2d, gmm_64d
from adaptstep.nn.schedules import NoiseSchedule
from adaptstep.nn.solvers import MULTISTEP_SOLVERS, DPMSolverPlusPlus, SwitchingSolver, UniPC, sample
from adaptstep.nn.timesteps import make_timesteps

ANALYTIC_MODELS = {"gmm-2d": gmm_2d, "gmm-64d": gmm_64d}
SOLVER_NAMES = {order: name for name, order in MULTISTEP_SOLVERS.items()}
PROCESS_SOLVERS = ("dpmpp", "unipc-bh1", "unipc-bh2")  # the env's multistep solvers: DPM-Solver++ or UniPC's B(h)


def solver_name(solver: str, order: int) -> str:
    """The ``nn.solvers.sample`` name of a process solver at an order.

    Args:
        solver: A ``PROCESS_SOLVERS`` name.
        order: The solver order, 1, 2 or 3.

    Raises:
        ValueError: If ``solver`` is not in ``PROCESS_SOLVERS``.
    """
    if solver not in PROCESS_SOLVERS:
        raise ValueError(f"solver must be one of {PROCESS_SOLVERS}, got {solver!r}")
    return SOLVER_NAMES[order] if solver == "dpmpp" else f"unipc{order}-{solver.split('-')[1]}"


@functools.lru_cache(maxsize=8)
def load_sampler_model(model: str) -> tuple[Denoiser, NoiseSchedule]:
    """The denoiser and noise schedule of a sampler model (cached).

    Args:
        model: ``gmm-2d`` / ``gmm-64d`` (exact, float64), the shipped ``digits`` denoiser, or the path of a
            ``denoiser.pt`` from ``train-denoiser``.

    Raises:
        ValueError: If ``model`` is neither a known name nor a file.
    """
    if model in ANALYTIC_MODELS:
        mixture = ANALYTIC_MODELS[model]()
        return mixture, mixture.schedule
    if model in DENOISER_FILES:
        network = pretrained_denoiser(model)
        return network, network.schedule
    if Path(model).is_file():
        network = load_denoiser(model)
        return network, network.schedule
    raise ValueError(f"model must be one of {sorted(ANALYTIC_MODELS) + sorted(DENOISER_FILES)} or a denoiser.pt file, "
                     f"got {model!r}")


@functools.lru_cache(maxsize=1024)
def noise_and_reference(model: str, batch_size: int, noise_seed: int,
                        reference_steps: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The initial noise x_T of ``noise_seed`` and its RK4 reference solution at the schedule's t_min.

    Analytic mixtures draw x_T exactly from p_T; learned models from N(0, I) (α_T ≈ 0 at T = 1).

    Args:
        model: The sampler model's name (see ``load_sampler_model``).
        batch_size: The samples in the batch.
        noise_seed: The seed of the noise.
        reference_steps: The RK4 steps of the reference solution.

    Returns:
        The noise x_T and its reference solution.
    """
    denoiser, schedule = load_sampler_model(model)
    generator = torch.Generator().manual_seed(noise_seed)
    if hasattr(denoiser, "sample_marginal"):
        x_T = denoiser.sample_marginal(batch_size, schedule.t_max, generator)
    else:
        device = next(denoiser.parameters()).device
        x_T = torch.randn(batch_size, denoiser.config.dim, generator=generator).to(device)
    with torch.no_grad():
        reference = reference_solution(denoiser, schedule, x_T, steps=reference_steps)
    return x_T, reference


@functools.lru_cache(maxsize=1024)
def baseline_error(model: str, batch_size: int, noise_seed: int, reference_steps: int, timesteps: str, nfe: int,
                   order: int, third_order: str = "exact", lower_order_final: bool | str = True,
                   solver: str = "dpmpp") -> float:
    """Endpoint RMSE of a solver on a hand schedule, from the noise of ``noise_seed`` (cached).

    Args:
        model: The sampler model's name (see ``load_sampler_model``).
        batch_size: The samples in the batch.
        noise_seed: The seed of the noise.
        reference_steps: The RK4 steps of the reference solution.
        timesteps: The hand schedule's name (a ``TIMESTEPS`` key).
        nfe: The schedule's steps.
        order: The solver order (with warm-up).
        third_order: The third-order update, ``"exact"`` or ``"dpmsolver"``.
        lower_order_final: The final-order rule (default True: DPM-Solver's code).
        solver: A ``PROCESS_SOLVERS`` name.
    """
    denoiser, schedule = load_sampler_model(model)
    x_T, reference = noise_and_reference(model, batch_size, noise_seed, reference_steps)
    times = make_timesteps(timesteps, schedule, nfe, device=x_T.device)
    with torch.no_grad():
        x, _ = sample(denoiser, schedule, x_T, times, solver=solver_name(solver, order), third_order=third_order,
                      lower_order_final=lower_order_final)
    value = endpoint_rmse(x, reference)
    return value if math.isfinite(value) else math.inf


class SamplingProcess:
    """A multistep trajectory (DPM-Solver++ or UniPC) whose next time and order the caller chooses at every step.

    With ``switching=True`` the caller chooses each step's solver too (``nn.solvers.SwitchingSolver``).

    Args:
        model: The sampler model's name (see ``load_sampler_model``).
        batch_size: The samples in the batch.
        noise_seed: The seed of the noise.
        reference_steps: The RK4 steps of the reference solution.
        third_order: The third-order update, ``"exact"`` or ``"dpmsolver"``.
        solver: A ``PROCESS_SOLVERS`` name; with ``switching``, the default step's solver.
        switching: Whether each step may pick its solver.

    Raises:
        ValueError: If ``solver`` is not in ``PROCESS_SOLVERS``.
    """

    def __init__(self, model: str, batch_size: int, noise_seed: int, reference_steps: int = 128,
                 third_order: str = "exact", solver: str = "dpmpp", switching: bool = False) -> None:
        if solver not in PROCESS_SOLVERS:
            raise ValueError(f"solver must be one of {PROCESS_SOLVERS}, got {solver!r}")
        self.denoiser, self.schedule = load_sampler_model(model)
        self.x, self.reference = noise_and_reference(model, batch_size, noise_seed, reference_steps)
        if switching:
            self.solver = SwitchingSolver(self.denoiser, self.schedule, solver, third_order)
        elif solver == "dpmpp":
            self.solver = DPMSolverPlusPlus(self.denoiser, self.schedule, third_order=third_order)
        else:
            self.solver = UniPC(self.denoiser, self.schedule, solver.split("-")[1])
        self.switching = switching
        self.t, self.t_end = float(self.schedule.t_max), float(self.schedule.t_min)
        self.lambda_start, self.lambda_end = self.log_snr(self.t), self.log_snr(self.t_end)
        self.lam = self.lambda_start  # λ at the current time
        self.times: list[float] = [self.t]
        self.orders: list[int] = []
        self.solvers: list[str] = []  # the solver of every step
        self._default_solver = solver
        self.step_change = 0.0  # RMS of the last step's change of x
        self.correction = 0.0  # RMS of (order-k update − order-1 update) of the last step: a local error signal

    def log_snr(self, t: float) -> float:
        """λ_t = log α_t − log σ_t."""
        return self.schedule.lambda_scalar(float(t))

    def time_of(self, log_snr: float) -> float:
        """The time t whose log-SNR λ_t is ``log_snr``."""
        return self.schedule.inverse_lambda_scalar(float(log_snr))

    @property
    def nfe(self) -> int:
        """Denoiser calls (NFE) so far."""
        return self.solver.nfe

    @property
    def cost(self) -> int:
        """Denoiser calls (NFE) so far."""
        return self.nfe

    @property
    def done(self) -> bool:
        """Whether the trajectory has reached t_min."""
        return self.t <= self.t_end

    @property
    def progress(self) -> float:
        """Fraction of the λ range covered, 0 at t_max and 1 at t_min."""
        return (self.lam - self.lambda_start) / (self.lambda_end - self.lambda_start)

    def advance(self, t_next: float, order: int, solver: str | None = None) -> None:
        """One solver step to ``t_next`` (1 NFE).

        Args:
            t_next: The time to step to.
            order: The solver order, capped at what the history allows.
            solver: A ``PROCESS_SOLVERS`` name picking this step's update (only with ``switching=True``); None: the
                default.

        Raises:
            ValueError: If ``solver`` differs from the default without ``switching``.
        """
        if solver is not None and not self.switching and solver != self._default_solver:
            raise ValueError(f"this process runs {self._default_solver!r} only (switching=False), got {solver!r}")
        order = min(order, self.solver.max_order)
        with torch.no_grad():
            if self.switching:
                x_next = self.solver.step(self.x, self.t, t_next, order, solver)
            else:
                x_next = self.solver.step(self.x, self.t, t_next, order)
        changes = torch.stack((x_next - self.x, x_next - self.solver.last_ddim_update))
        self.step_change, self.correction = changes.pow(2).mean(dim=(1, 2)).sqrt().tolist()  # one reduction
        self.x, self.t, self.lam = x_next, t_next, self.log_snr(t_next)
        self.times.append(t_next)
        self.orders.append(order)
        self.solvers.append(solver or self._default_solver)

    def quality(self) -> dict[str, float]:
        """The endpoint RMSE against the reference (meaningful once ``done``)."""
        return {"error": self.error()}

    def summary(self) -> dict[str, Any]:
        """The schedule taken: times, orders and NFE."""
        return {"times": list(self.times), "orders": list(self.orders), "nfe": self.nfe}

    def error(self) -> float:
        """Endpoint RMSE against the reference (meaningful once ``done``)."""
        value = endpoint_rmse(self.x, self.reference)
        return value if math.isfinite(value) else math.inf

    def sample_errors(self) -> list[float]:
        """Each sample's endpoint RMS error against its reference (``metrics.sample_errors``; inf where not finite)."""
        errors = sample_errors(self.x, self.reference)
        return [value if math.isfinite(value) else math.inf for value in errors.tolist()]

    @property
    def centres(self) -> torch.Tensor | None:
        """A mixture's component means at t_end (α μ_k), None for a model that is not a Gaussian mixture."""
        means = getattr(self.denoiser, "means", None)
        return None if means is None else self.schedule.alpha(torch.tensor(self.t_end, dtype=torch.float64)) * means

    def mode_switch_rate(self) -> float:
        """The share of samples whose nearest component differs from their reference's (mixtures only)."""
        return float(mode_switches(self.x, self.reference, self.centres).mean())
