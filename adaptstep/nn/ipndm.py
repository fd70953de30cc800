"""iPNDM: the improved pseudo linear multistep sampler (Zhang & Chen 2023, DEIS; Zhou et al. 2024, "Fast ODE-based
sampling for diffusion models in around 5 steps").

In EDM variables x̃ = x/α, σ̃ = σ/α the PF-ODE is dx̃/dσ̃ = d = (x̃ − D(x̃; σ̃))/σ̃. iPNDM takes Adams–Bashforth steps
x̃_next = x̃ + (σ̃_next − σ̃)·Σ_j c_j d_{i−j} with the equal-step coefficients of order k = min(max_order, steps so
far), warming up with orders 1, 2, 3 (1 NFE per step): c = [1], [3, −1]/2, [23, −16, 5]/12, [55, −59, 37, −9]/24,
as Zhou et al.'s code does on any grid (its coefficients do not adapt to unequal steps).
"""

from __future__ import annotations

import torch

from adaptstep.nn.solvers import EulerSolver, _step_times

IPNDM_COEFFICIENTS = {1: (1.0,), 2: (3 / 2, -1 / 2), 3: (23 / 12, -16 / 12, 5 / 12),
                      4: (55 / 24, -59 / 24, 37 / 24, -9 / 24)}


class IPNDM(EulerSolver):
    """iPNDM with at most ``max_order`` past slopes (1–4; Zhou et al. use 4).

    Args:
        denoiser: The x̂0-predicting denoiser.
        schedule: Its noise schedule.
        max_order: The highest Adams–Bashforth order, 1 to 4.

    Raises:
        ValueError: If ``max_order`` is not 1, 2, 3 or 4.
    """

    def __init__(self, denoiser, schedule, max_order: int = 4) -> None:
        if max_order not in IPNDM_COEFFICIENTS:
            raise ValueError(f"max_order must be 1, 2, 3 or 4, got {max_order!r}")
        super().__init__(denoiser, schedule)
        self.max_order = max_order
        self.slopes: list[torch.Tensor] = []  # the latest first

    def step(self, x: torch.Tensor, t, t_next) -> torch.Tensor:
        """x at t_next, from x at t (0 <= t_next < t; 1 NFE)."""
        t, t_next = _step_times(x, t, t_next)
        x_tilde, sigma = x / self.schedule.alpha(t), self.schedule.edm_sigma(t)
        self.slopes = [(x_tilde - self._denoise(x, t)) / sigma, *self.slopes][:self.max_order]
        coefficients = IPNDM_COEFFICIENTS[len(self.slopes)]
        slope = sum(c * d for c, d in zip(coefficients, self.slopes))
        return self.schedule.alpha(t_next) * (x_tilde + (self.schedule.edm_sigma(t_next) - sigma) * slope)


def sample_ipndm(denoiser, schedule, x: torch.Tensor, timesteps, max_order: int = 4) -> tuple[torch.Tensor, int]:
    """Integrate the PF-ODE with iPNDM from x at timesteps[0] through every time in ``timesteps``.

    Returns:
        The samples at the last time and the NFE spent (= steps).
    """
    solver = IPNDM(denoiser, schedule, max_order)
    times = [float(t) for t in timesteps]
    for t, t_next in zip(times, times[1:]):
        x = solver.step(x, t, t_next)
    return x, solver.nfe
