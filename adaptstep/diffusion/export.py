"""A sampling schedule as plain JSON, for other samplers (diffusers, k-diffusion, ...) and for the record.

A schedule is N + 1 decreasing times t_0 > … > t_N with the order of each of the N steps. The file also holds,
at every t_i, the VP quantities of the noise schedule: half log-SNR λ_i, σ_i, α_i and the EDM noise level
σ̃_i = σ_i/α_i = e^{−λ_i} (Karras et al. 2022); for a ``DiscreteVPSchedule`` also diffusers' integer timestep
τ_i = round(t_i N − 1) ∈ [0, N − 1] (exact when t_i lies on the grid t = (τ + 1)/N). Metadata: the noise
schedule's name and parameters, the model, the NFE, the source (e.g. a controller spec) and adaptstep's version.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from numbers import Real
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adaptstep._version import __version__
from adaptstep.io import atomic_write_text
from adaptstep.nn.schedules import (
    CosineVPSchedule,
    DiscreteVPSchedule,
    LinearVPSchedule,
    NoiseSchedule,
    make_noise_schedule,
)
from adaptstep.nn.solvers import ORDERS

FORMAT = "adaptstep-schedule"
FORMAT_VERSION = 1
# Multistep solvers with the listed per-step orders: DPM-Solver++, UniPC with B(h) = bh1 or bh2, or "switching"
# (a solver chosen per step, listed in solver_options["solvers"]); then Euler and EDM's Heun.
MULTISTEP_NAMES = ("dpmpp", "unipc-bh1", "unipc-bh2", "switching")
SOLVER_NAMES = (*MULTISTEP_NAMES, "euler", "heun")
DERIVED = ("lambdas", "sigmas", "alphas", "edm_sigmas")
REQUIRED = ("format", "format_version", "times", "orders", "solver", "solver_options", "noise_schedule", *DERIVED,
            "model", "nfe", "source", "adaptstep_version", "metadata")


@dataclass(frozen=True)
class ExportedSchedule:
    """One schedule with its per-time VP quantities (see the module docstring); build it with ``export_schedule``."""

    times: tuple[float, ...]
    orders: tuple[int, ...]
    solver: str
    noise_schedule: dict[str, Any]
    lambdas: tuple[float, ...]
    sigmas: tuple[float, ...]
    alphas: tuple[float, ...]
    edm_sigmas: tuple[float, ...]
    timesteps: tuple[int, ...] | None
    nfe: int
    model: str | None = None
    source: str | None = None
    adaptstep_version: str = ""
    solver_options: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def steps(self) -> int:
        """The number of steps N (one order each)."""
        return len(self.orders)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object of ``save_schedule`` (lists for tuples; ``timesteps`` only for a discrete schedule)."""
        record = {"format": FORMAT, "format_version": FORMAT_VERSION, **asdict(self)}
        if self.timesteps is None:
            del record["timesteps"]
        return {key: list(value) if isinstance(value, tuple) else value for key, value in record.items()}


def noise_schedule_params(schedule: NoiseSchedule) -> dict[str, Any]:
    """``{"name": ..., **constructor arguments}`` such that ``make_noise_schedule`` rebuilds ``schedule``."""
    if type(schedule) is LinearVPSchedule:
        return {"name": "linear", "beta_min": schedule.beta_min, "beta_max": schedule.beta_max, "t_min": schedule.t_min}
    if type(schedule) is CosineVPSchedule:
        return {"name": "cosine", "s": schedule.s, "t_min": schedule.t_min}
    if type(schedule) is DiscreteVPSchedule:
        return {"name": "discrete", "betas": schedule.betas.tolist()}
    raise ValueError(f"schedule must be a LinearVPSchedule, CosineVPSchedule or DiscreteVPSchedule, got {schedule!r}")


def noise_schedule_from_params(params: Mapping[str, Any]) -> NoiseSchedule:
    """The noise schedule described by ``noise_schedule_params``."""
    if not isinstance(params, Mapping) or "name" not in params:
        raise ValueError(f"params must be a mapping with a 'name', got {params!r}")
    kwargs = {key: value for key, value in params.items() if key != "name"}
    try:
        if "betas" in kwargs:
            kwargs["betas"] = torch.tensor(kwargs["betas"], dtype=torch.float64)
        return make_noise_schedule(params["name"], **kwargs)
    except TypeError as error:  # unknown or missing constructor arguments
        raise ValueError(f"params {sorted(kwargs)} do not fit noise schedule {params['name']!r}: {error}") from None


def _check_times(times: Sequence[float], schedule: NoiseSchedule) -> list[float]:
    if not isinstance(times, Sequence) or not all(isinstance(t, Real) and not isinstance(t, bool) for t in times):
        raise ValueError(f"times must be a sequence of numbers, got {times!r}")
    values = [float(t) for t in times]
    if len(values) < 2 or not all(math.isfinite(t) for t in values):
        raise ValueError(f"times must hold at least 2 finite values, got {values}")
    if any(not b < a for a, b in zip(values, values[1:])):
        raise ValueError(f"times must be strictly decreasing, got {values}")
    if not (schedule.t_min <= values[-1] and values[0] <= schedule.t_max):
        raise ValueError(f"times must lie in [t_min, t_max] = [{schedule.t_min}, {schedule.t_max}], got {values}")
    return values


def _check_orders(orders: Sequence[int], steps: int, solver: str) -> list[int]:
    values = list(orders) if isinstance(orders, Sequence) else orders
    if not isinstance(values, list) or len(values) != steps or any(
            not isinstance(o, int) or isinstance(o, bool) or o not in ORDERS for o in values):
        raise ValueError(f"orders must hold {steps} values (one per step) in {ORDERS}, got {values}")
    if solver in MULTISTEP_NAMES and any(order > index + 1 for index, order in enumerate(values)):
        raise ValueError(f"orders of the multistep solver may be at most 1, 2, 3, ... (warm-up), got {values}")
    return values


def export_schedule(
    times: Sequence[float] | torch.Tensor | np.ndarray,
    orders: Sequence[int] | np.ndarray,
    noise_schedule: NoiseSchedule,
    solver: str = "dpmpp",
    nfe: int | None = None,
    model: str | None = None,
    source: str | None = None,
    solver_options: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> ExportedSchedule:
    """A schedule with its λ, σ, α, σ̃ and, for a ``DiscreteVPSchedule``, its integer timesteps.

    Args:
        times: The times, strictly decreasing in [t_min, t_max].
        orders: One order per step.
        noise_schedule: The noise schedule.
        solver: One of ``SOLVER_NAMES``.
        nfe: The denoiser calls; None: the steps (2·steps for ``heun``).
        model: The sampler model's name.
        source: Where the schedule came from (e.g. the controller spec).
        solver_options: The solver's settings.
        metadata: Free-form metadata.

    Raises:
        ValueError: If an argument is invalid.
    """
    if solver not in SOLVER_NAMES:
        raise ValueError(f"solver must be one of {SOLVER_NAMES}, got {solver!r}")
    values = _check_times(times.tolist() if hasattr(times, "tolist") else times, noise_schedule)  # tensor, array
    steps = len(values) - 1
    order_values = _check_orders(orders.tolist() if hasattr(orders, "tolist") else orders, steps, solver)
    nfe = (2 * steps if solver == "heun" else steps) if nfe is None else nfe
    if isinstance(nfe, bool) or not (isinstance(nfe, int) and nfe >= 1):
        raise ValueError(f"nfe must be an int >= 1, got {nfe!r}")
    for name, value in (("model", model), ("source", source)):
        if value is not None and not isinstance(value, str):
            raise ValueError(f"{name} must be None or a string, got {value!r}")
    for name, value in (("solver_options", solver_options), ("metadata", metadata)):
        if value is not None and not isinstance(value, Mapping):
            raise ValueError(f"{name} must be None or a mapping, got {value!r}")
    t = torch.tensor(values, dtype=torch.float64)
    timesteps = None
    if isinstance(noise_schedule, DiscreteVPSchedule):
        indices = torch.round(noise_schedule.time_to_index(t)).clamp(0, noise_schedule.num_steps - 1)
        timesteps = tuple(int(i) for i in indices)

    return ExportedSchedule(
        times=tuple(values), orders=tuple(order_values), solver=solver,
        noise_schedule=noise_schedule_params(noise_schedule),
        lambdas=tuple(noise_schedule.lambda_(t).tolist()), sigmas=tuple(noise_schedule.sigma(t).tolist()),
        alphas=tuple(noise_schedule.alpha(t).tolist()), edm_sigmas=tuple(noise_schedule.edm_sigma(t).tolist()),
        timesteps=timesteps, nfe=nfe, model=model, source=source, adaptstep_version=__version__,
        solver_options=dict(solver_options or {}), metadata=dict(metadata or {}),
    )


def save_schedule(path: str | Path, schedule: ExportedSchedule, overwrite: bool = False) -> Path:
    """Write ``schedule`` as JSON, atomically.

    Args:
        path: The JSON file.
        schedule: The schedule.
        overwrite: Whether to replace an existing file.

    Returns:
        ``path``.

    Raises:
        FileExistsError: If the file exists and ``overwrite`` is False.
    """
    path = Path(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True (--overwrite) to replace it")
    lines = (f" {json.dumps(key)}: {json.dumps(value, allow_nan=False)}" for key, value in schedule.to_dict().items())
    atomic_write_text(path, "{\n" + ",\n".join(lines) + "\n}\n")  # one key per line
    return path


def load_schedule(path: str | Path) -> ExportedSchedule:
    """Read and validate a file of ``save_schedule``.

    Raises:
        ValueError: Naming the file and the key, on missing keys, times not strictly decreasing, lengths that
            disagree, or λ, σ, α, σ̃, timesteps that do not follow from the times and the noise schedule.
    """
    path = Path(path)
    try:
        record = json.loads(path.read_text())
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(record, dict):
        raise ValueError(f"{path}: expected a JSON object, got {type(record).__name__}")
    missing = [key for key in REQUIRED if key not in record]
    if missing:
        raise ValueError(f"{path}: missing key(s) {missing}")
    if record["format"] != FORMAT or record["format_version"] != FORMAT_VERSION:
        raise ValueError(f"{path}: key 'format' must be {FORMAT!r} version {FORMAT_VERSION}, "
                         f"got {record['format']!r} version {record['format_version']!r}")
    try:
        noise_schedule = noise_schedule_from_params(record["noise_schedule"])
    except ValueError as error:
        raise ValueError(f"{path}: key 'noise_schedule': {error}") from None
    try:  # the messages of export_schedule start with the parameter's name, which is the key's
        schedule = export_schedule(record["times"], record["orders"], noise_schedule, record["solver"], record["nfe"],
                                   record["model"], record["source"], record["solver_options"], record["metadata"])
    except ValueError as error:
        raise ValueError(f"{path}: key {error}") from None
    for key in DERIVED:
        stored = record[key]
        if not (isinstance(stored, list) and len(stored) == len(schedule.times)
                and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in stored)):
            raise ValueError(f"{path}: key {key!r} must be a list of {len(schedule.times)} numbers (one per time)")
        if not torch.allclose(torch.tensor(stored, dtype=torch.float64),
                              torch.tensor(getattr(schedule, key), dtype=torch.float64), rtol=1e-9, atol=1e-12):
            raise ValueError(f"{path}: key {key!r} does not follow from 'times' and 'noise_schedule'")
    stored_timesteps = record.get("timesteps")
    if schedule.timesteps is None and stored_timesteps is not None:
        raise ValueError(f"{path}: key 'timesteps' is defined for a discrete noise schedule only")
    if schedule.timesteps is not None and stored_timesteps != list(schedule.timesteps):
        raise ValueError(f"{path}: key 'timesteps' must be the {len(schedule.times)} integer timesteps "
                         f"{list(schedule.timesteps)} of 'times', got {stored_timesteps!r}")
    return replace(schedule, adaptstep_version=str(record["adaptstep_version"]))
