"""Named inference-time-scaling tasks: a flow model, the verifier that guides search, and a held-out verifier.

- ``gmm-2d``: the 8-mode ring (``gmm_flow_2d``); reward log p_S(x̂0) of the target sub-mixture S = {0}
  (one mode in eight); held-out: log p_data(x̂0), the full mixture's log-density (realism).
- ``gmm-2d-compositional``: two constraints at once, reward log p_A(x̂0) + log p_B(x̂0) with A = the three upper
  modes {1, 2, 3} and B = the three right-hand modes {7, 0, 1}: only mode 1 satisfies both; held-out as above.
- ``gmm-64d-compositional``: the same two-constraint reward on the random 16-component 64-d mixture
  (``gmm_flow_64d``), A = components {0, …, 4} and B = {4, …, 8}: only component 4 satisfies both; held-out: the
  full mixture's log-density.
- ``digits``: the shipped rectified flow on the 8×8 digits; reward p(y = ``target`` | x̂0) under the shipped
  classifier; held-out: the same probability under the shipped, differently built held-out classifier.

On the mixtures a generation ends in a wrong mode when its x̂0's nearest component mean is not a target mode
(``Task.wrong_mode``): mode 0 on ``gmm-2d``, mode 1 on ``gmm-2d-compositional``, component 4 on
``gmm-64d-compositional``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from adaptstep.flow.gmm_flow import gmm_flow_2d, gmm_flow_64d
from adaptstep.flow.pretrained import pretrained_flow
from adaptstep.flow.verifiers import Verifier, class_probability, sub_mixture_log_density
from adaptstep.nn.classifier import pretrained_classifier, pretrained_heldout_classifier

FLOW_TASKS = ("gmm-2d", "gmm-2d-compositional", "gmm-64d-compositional", "digits")


@dataclass
class Task:
    """A named task: a flow model, the verifier that guides search, and a held-out verifier.

    Args:
        name: One of ``FLOW_TASKS``.
        flow (GMMFlow | FlowNet): The flow model.
        verifier: The reward that search maximises.
        heldout: The held-out verifier, for evaluation only.
        target_modes: The mixture components the verifier targets; empty for tasks without modes.
    """

    name: str
    flow: Any
    verifier: Verifier
    heldout: Verifier
    target_modes: tuple[int, ...] = ()

    def wrong_modes(self, x0: torch.Tensor) -> np.ndarray:
        """Per sample of ``x0`` (n, d): 1.0 when its nearest component mean is not a target mode, else 0.0; NaN
        throughout for a task without modes."""
        if not self.target_modes:
            return np.full(len(x0), np.nan)
        means = self.flow.mixture.means
        nearest = torch.cdist(x0.to(means.device, means.dtype), means).argmin(dim=1).cpu().numpy()
        return (~np.isin(nearest, self.target_modes)).astype(np.float64)

    def wrong_mode(self, x0: torch.Tensor) -> float:
        """``wrong_modes`` of one sample (shape (1, d)) as a float."""
        return float(self.wrong_modes(x0)[0])


def _sum(*functions):
    return lambda x0: sum(function(x0) for function in functions)


def make_task(name: str, target: int = 0, nan_policy: str = "raise", device: str | torch.device = "auto") -> Task:
    """The task ``name``.

    Args:
        name: One of ``FLOW_TASKS``.
        target: The digit class of ``digits``.
        nan_policy: ``"raise"`` or ``"worst"``: what the verifiers do with a NaN reward (``Verifier``).
        device: The torch device, ``"auto"`` for ``resolve_device``'s choice.

    Raises:
        ValueError: If ``name`` or ``nan_policy`` is unknown.
    """
    if name in ("gmm-2d", "gmm-2d-compositional"):
        flow = gmm_flow_2d(device=device)
        realism = Verifier("log p_data", lambda x0: flow.log_prob(x0.to(flow.device, flow.dtype)), nan_policy)
        if name == "gmm-2d":
            reward = Verifier("log p_mode0", sub_mixture_log_density(flow, [0]), nan_policy)
        else:
            both = _sum(sub_mixture_log_density(flow, [1, 2, 3]), sub_mixture_log_density(flow, [7, 0, 1]))
            reward = Verifier("log p_upper + log p_right", both, nan_policy)
        return Task(name, flow, reward, realism, (0,) if name == "gmm-2d" else (1,))
    if name == "gmm-64d-compositional":
        flow = gmm_flow_64d(device=device)
        realism = Verifier("log p_data", lambda x0: flow.log_prob(x0.to(flow.device, flow.dtype)), nan_policy)
        both = _sum(sub_mixture_log_density(flow, range(0, 5)), sub_mixture_log_density(flow, range(4, 9)))
        return Task(name, flow, Verifier("log p_A + log p_B", both, nan_policy), realism, (4,))
    if name == "digits":
        flow = pretrained_flow(device=device)
        reward = Verifier(f"p({target}) classifier", class_probability(pretrained_classifier(device=device), target),
                          nan_policy)
        heldout = Verifier(f"p({target}) held-out classifier",
                           class_probability(pretrained_heldout_classifier(device=device), target), nan_policy)
        return Task(name, flow, reward, heldout)
    raise ValueError(f"task must be one of {list(FLOW_TASKS)}, got {name!r}")
