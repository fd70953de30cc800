"""TS-DPM's time-shift sampler (Li et al., ICLR 2024, arXiv 2305.15583), as an option of the DPM-Solver++ sampler.

Exposure bias leaves a sample's noise level off the schedule's. TS-DPM therefore feeds the network, per sample,
the time t' in a window [t − w/2, t + w/2] whose noise variance best matches the sample's:
t' = argmin_{t'} (Var_i(x) − σ²_{t'})², with Var_i the (unbiased) variance over the features of sample i and
σ² = 1 − ᾱ, only while t > cutoff. The solver's own λ arithmetic keeps the unshifted t.

TS-DPM searches the integer DDPM steps of its window; σ²_t increases with t, so over the continuous window
the argmin is the projection of σ⁻²(Var_i) onto it, which is what ``network_times`` returns (no grid).
Units: TS-DPM counts w and c in steps of an N = 1000-step DDPM, step i sitting at t = (i + 1)/N, so
``TimeShift.from_steps(30, 300)`` (its DPM-Solver setting) is window = 30/N = 0.03, cutoff = 301/N = 0.301.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from adaptstep.nn.schedules import NoiseSchedule

VARIANCE_FLOOR = 1e-12  # Var is clamped to [floor, 1 − floor] before inverting σ² (the window clip decides)


@dataclass(frozen=True)
class TimeShift:
    """Shift the denoiser's time per sample within ``window`` while t > ``cutoff``.

    Attributes:
        window: The window's total width w, in t (>= 0; 0 switches the shift off).
        cutoff: The time c in t (>= 0) at and below which the shift stops.

    Raises:
        ValueError: If ``window`` or ``cutoff`` is not a finite number >= 0.
    """

    window: float
    cutoff: float = 0.0

    def __post_init__(self) -> None:
        for name in ("window", "cutoff"):
            value = getattr(self, name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")

    @classmethod
    def from_steps(cls, window_steps: int, cutoff_step: int, num_steps: int = 1000) -> TimeShift:
        """TS-DPM's settings in DDPM steps (e.g. w = 30, c = 300 for DPM-Solver): window w/N, cutoff (c + 1)/N.

        Args:
            window_steps: w, an int >= 0.
            cutoff_step: c, an int >= 0.
            num_steps: N, the DDPM's steps (>= 1).

        Raises:
            ValueError: If a value is out of range.
        """
        if not (isinstance(num_steps, int) and num_steps >= 1):
            raise ValueError(f"num_steps must be an int >= 1, got {num_steps!r}")
        for name, value in (("window_steps", window_steps), ("cutoff_step", cutoff_step)):
            if not (isinstance(value, int) and value >= 0):
                raise ValueError(f"{name} must be an int >= 0, got {value!r}")
        return cls(window_steps / num_steps, (cutoff_step + 1) / num_steps)

    def active(self, t: torch.Tensor | float) -> bool:
        """Whether the shift applies at solver time t (window > 0 and t > cutoff)."""
        return self.window > 0 and float(t) > self.cutoff

    def network_times(self, x: torch.Tensor, t: torch.Tensor, schedule: NoiseSchedule) -> torch.Tensor:
        """The per-sample network times t' = clip(σ⁻²(Var_i(x)), max(t − w/2, t_min), min(t + w/2, t_max)).

        Args:
            x: The samples, shape (batch, d) with d >= 2.
            t: The solver time, 0-d.
            schedule: The noise schedule.

        Returns:
            t' of shape (batch,), or t itself when the shift is not ``active``.

        Raises:
            ValueError: If ``x`` is not of shape (batch, d) with d >= 2.
        """
        if x.ndim != 2 or x.shape[1] < 2:
            raise ValueError(f"x must have shape (batch, d) with d >= 2, got {tuple(x.shape)}")
        if not self.active(t):
            return t
        variance = torch.clamp(x.var(dim=1), VARIANCE_FLOOR, 1 - VARIANCE_FLOOR).to(torch.float64)
        matched = schedule.inverse_lambda(0.5 * (torch.log1p(-variance) - torch.log(variance)))  # σ²_{t'} = Var
        lower = max(float(t) - self.window / 2, schedule.t_min)
        upper = min(float(t) + self.window / 2, schedule.t_max)
        return torch.clamp(matched, lower, upper).to(x.dtype)
