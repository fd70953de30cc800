"""Verifiers: rewards r(x̂0) of clean-sample estimates, evaluated on Tweedie's x̂0 (Kim et al. 2025, Eq. 19).

A verifier maps x0 of shape (n, d) to rewards of shape (n,) (float64, higher is better). ``rewards``
applies its NaN policy: ``"raise"`` (default) stops with an error naming the verifier, ``"worst"`` scores NaN
as −inf so that such a proposal is never selected (and counts it in ``nan_count``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

NAN_POLICIES = ("raise", "worst")


class Verifier:
    """A named reward function of clean samples with a NaN policy.

    Args:
        name: The verifier's name, for errors and tables.
        function: Maps x0 of shape (n, d) to rewards of shape (n,), higher is better.
        nan_policy: ``"raise"`` or ``"worst"`` (see the module's description).

    Raises:
        ValueError: If ``nan_policy`` is unknown.
    """

    def __init__(self, name: str, function: Callable[[torch.Tensor], torch.Tensor], nan_policy: str = "raise"):
        if nan_policy not in NAN_POLICIES:
            raise ValueError(f"nan_policy must be one of {list(NAN_POLICIES)}, got {nan_policy!r}")
        self.name, self.function, self.nan_policy = name, function, nan_policy
        self.nan_count = 0

    def __call__(self, x0: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            rewards = self.function(x0).to(torch.float64).reshape(-1)
        if len(rewards) != len(x0):
            raise ValueError(f"verifier {self.name!r} returned {len(rewards)} rewards for {len(x0)} samples")
        invalid = torch.isnan(rewards)
        if bool(invalid.any()):
            if self.nan_policy == "raise":
                raise ValueError(f"verifier {self.name!r} returned NaN for {int(invalid.sum())} of {len(x0)} samples; "
                                 "pass nan_policy='worst' to score them as -inf instead")
            self.nan_count += int(invalid.sum())
            rewards = torch.where(invalid, torch.full_like(rewards, -torch.inf), rewards)
        return rewards


def sub_mixture_log_density(flow, components: Sequence[int]) -> Callable[[torch.Tensor], torch.Tensor]:
    """log Σ_{k∈S} w_k N(x; μ_k, Σ_k) of a Gaussian-mixture flow's data distribution, restricted to S.

    Args:
        flow (GMMFlow): The Gaussian-mixture flow.
        components: S, indices of the mixture's components.

    Raises:
        ValueError: If S is empty or holds an index out of range.
    """
    mixture = flow.mixture
    chosen = sorted(set(int(k) for k in components))
    if not chosen or chosen[0] < 0 or chosen[-1] >= mixture.components:
        raise ValueError(f"components must be indices in [0, {mixture.components}), got {list(components)}")
    index = torch.tensor(chosen, device=mixture.device)

    def log_density(x0: torch.Tensor) -> torch.Tensor:
        log_joint = mixture.component_log_prob(x0.to(mixture.device, mixture.dtype), 0.0)
        return torch.logsumexp(log_joint[:, index], dim=1)

    return log_density


def class_probability(classifier: torch.nn.Module, target: int) -> Callable[[torch.Tensor], torch.Tensor]:
    """p(y = ``target`` | x0) under a digit classifier (logits over 10 classes).

    Raises:
        ValueError: If ``target`` is not an int digit in [0, 9].
    """
    if not (isinstance(target, int) and 0 <= target < 10):
        raise ValueError(f"target must be an int digit in [0, 9], got {target!r}")

    def probability(x0: torch.Tensor) -> torch.Tensor:
        return torch.softmax(classifier(x0.to(torch.float32)), dim=1)[:, target].to(torch.float64).cpu()

    return probability
