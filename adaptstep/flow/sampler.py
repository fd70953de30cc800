"""Stochastic and deterministic generation from a flow model on a grid of ``steps`` transitions.

Modes (the ablation of Kim et al. 2025, Table 1):

- ``ode``: the probability-flow ODE, x ← x − u·Δ (Euler), the linear interpolant's own time.
- ``linear-sde``: the reverse SDE on the linear path, dx = [u − ½g²∇log p]dt + g dw̄, stepped by
  Euler–Maruyama: x ← x − u·Δ + ½g²·∇log p·Δ + g·√Δ·z with g(t) = c·t² (c = ``diffusion_norm``, 3 by default).
- ``vp-sde``: the same SDE after converting the flow to the VP path (``VPConvertedFlow``), g(s) = c·s² in VP time.

Every mode keeps the marginals p_t in the continuous limit (Kim et al., App. B). The grid runs from 1 to
``t_end`` (in linear time; the VP grid ends at the VP time of equal SNR) uniformly, or with the paper's
``exp`` warp t' = √(1 − (1 − t)²). Each state carries the velocity at it, evaluated once (1 NFE); its
Tweedie estimate x̂0 is free. The output of a generation is x̂0 of the last state (one Euler step to t = 0).
The VP path cannot start at pure noise (ᾱ(1) = 0.0066): its initial state is σ̄(1)·ε, a documented approximation.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from adaptstep.flow.interpolants import Interpolant, LinearInterpolant, VPConvertedFlow, VPInterpolant

MODES = ("ode", "linear-sde", "vp-sde")
TIME_GRIDS = ("uniform", "exp")


def _linear_grid(steps: int, t_end: float, time_grid: str) -> np.ndarray:
    if time_grid == "uniform":
        return np.linspace(1.0, t_end, steps + 1)
    warped = np.sqrt(1.0 - (1.0 - np.linspace(1.0, 0.0, steps + 1)) ** 2)  # exp warp of Kim et al.'s code
    return t_end + (1.0 - t_end) * warped


class FlowSampler:
    """Propose and evaluate states of a flow model's generation chain.

    ``times`` holds the ``steps + 1`` grid times in the mode's own time variable; ``linear_times`` the same in
    linear time.

    Args:
        flow (GMMFlow | FlowNet): The flow on the linear interpolant, with ``velocity(x, t)``, ``dim``, ``device``
            and ``dtype``.
        mode: One of ``MODES``: ``"ode"``, ``"linear-sde"`` or ``"vp-sde"``.
        steps: The transitions of the grid (>= 1).
        t_end: The grid's last time, in linear time, in (0, 0.5).
        time_grid: ``"uniform"`` or ``"exp"`` (the paper's warp).
        diffusion_norm: c of the diffusion g = c·t² (>= 0; ignored by the ODE).

    Raises:
        ValueError: If an argument is out of range.
    """

    def __init__(self, flow, mode: str = "vp-sde", steps: int = 10, t_end: float = 0.02,
                 time_grid: str = "uniform", diffusion_norm: float = 3.0) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {list(MODES)}, got {mode!r}")
        if time_grid not in TIME_GRIDS:
            raise ValueError(f"time_grid must be one of {list(TIME_GRIDS)}, got {time_grid!r}")
        if not (isinstance(steps, int) and steps >= 1):
            raise ValueError(f"steps must be an int >= 1, got {steps!r}")
        if not 0 < t_end < 0.5:
            raise ValueError(f"t_end must be in (0, 0.5), got {t_end!r}")
        if not (math.isfinite(diffusion_norm) and diffusion_norm >= 0):
            raise ValueError(f"diffusion_norm must be finite and >= 0, got {diffusion_norm!r}")
        self.flow, self.mode, self.steps = flow, mode, steps
        self.dim, self.device, self.dtype = flow.dim, flow.device, flow.dtype
        self.diffusion_norm = 0.0 if mode == "ode" else float(diffusion_norm)
        linear = _linear_grid(steps, t_end, time_grid)
        if mode == "vp-sde":
            path = VPInterpolant()
            self.path: Interpolant = path
            self.model = VPConvertedFlow(flow, path)
            end = path.time_of_linear(t_end)
            self.times = 1.0 - (1.0 - end) * (1.0 - linear) / (1.0 - t_end) if time_grid == "exp" else \
                np.linspace(1.0, end, steps + 1)
            self.linear_times = path.linear_time(torch.as_tensor(self.times)).numpy()
        else:
            self.path, self.model = LinearInterpolant(), flow
            self.times, self.linear_times = linear, linear

    def initial(self, noise: torch.Tensor) -> torch.Tensor:
        """The first state from standard normal ``noise`` (ε on the linear path, σ̄(1)·ε on the VP path)."""
        return noise.to(self.device, self.dtype) * float(self.path.sigma(self.times[0]))

    def evaluate(self, x: torch.Tensor, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The velocity at states ``x`` of grid index ``step`` (1 NFE per row) and their Tweedie x̂0."""
        time = self.times[step]
        with torch.no_grad():
            velocity = self.model.velocity(x, torch.full((len(x),), time, dtype=torch.float64))
        return velocity, self.path.tweedie(x, velocity, time)

    def diffusion(self, step: int) -> float:
        """g at grid index ``step``: c·t² in the mode's time (0 for the ODE)."""
        return self.diffusion_norm * float(self.times[step]) ** 2

    def propose(self, x: torch.Tensor, velocity: torch.Tensor, step: int, noise: torch.Tensor) -> torch.Tensor:
        """States at grid index ``step + 1`` by one Euler–Maruyama step from (x, its velocity) at ``step``.

        Args:
            x: States at grid index ``step``, shape (batch, dim); rows are broadcast against rows of ``noise``.
            velocity: The velocity at ``x``.
            step: The grid index of ``x``.
            noise: Standard normal noise, shape (batch, dim).
        """
        time, delta = self.times[step], self.times[step] - self.times[step + 1]
        g = self.diffusion(step)
        drift = -velocity * delta
        if g > 0:
            drift = drift + 0.5 * g**2 * delta * self.path.score(x, velocity, time)
        return x + drift + g * math.sqrt(delta) * noise.to(self.device, self.dtype)

    def generate(self, noise: torch.Tensor, generator: np.random.Generator) -> torch.Tensor:
        """A plain generation (no search) from initial ``noise``; SDE noise from ``generator``. Returns x̂0."""
        x = self.initial(noise)
        velocity, x0 = self.evaluate(x, 0)
        for step in range(self.steps):
            z = torch.from_numpy(generator.standard_normal(tuple(x.shape)))
            x = self.propose(x, velocity, step, z)
            velocity, x0 = self.evaluate(x, step + 1)
        return x0
