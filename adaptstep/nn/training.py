"""The training loop's shared parts: settings checks, one Adam step with an EMA update, and the loss curve.

Every model of the package trains the same way: Adam with the gradient norm clipped at 1, and sampling uses an
exponential moving average of the weights with decay min(ema_decay, (1 + k)/(10 + k)) at step k.
"""

import math

import torch

from adaptstep.core.settings import require_int

LOSS_CURVE_POINTS = 100


def check_training_settings(steps: int, batch_size: int, lr: float, ema_decay: float) -> None:
    """Check the shared training settings.

    Raises:
        ValueError: Naming the first of ``steps``, ``batch_size`` (ints >= 1), ``lr`` (> 0) or ``ema_decay``
            ([0, 1)) that is out of range.
    """
    require_int("steps", steps)
    require_int("batch_size", batch_size)
    if not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"lr must be finite and > 0, got {lr!r}")
    if not 0 <= ema_decay < 1:
        raise ValueError(f"ema_decay must lie in [0, 1), got {ema_decay!r}")


class NonFiniteLoss(ValueError):
    """The training loss or its gradient became NaN or inf: the run stops before the weights take the step."""


def training_step(model: torch.nn.Module, ema: torch.nn.Module, optimizer: torch.optim.Optimizer,
                  loss: torch.Tensor, step: int, ema_decay: float) -> None:
    """One Adam step on ``loss`` (gradient norm clipped at 1), then the EMA update.

    ema ← decay·ema + (1 − decay)·model with decay = min(ema_decay, (1 + step)/(10 + step)).

    Args:
        model: The model being trained.
        ema: Its exponential moving average, updated in place.
        optimizer: The model's optimiser.
        loss: The step's loss, a scalar tensor.
        step: The step's index k, from 0.
        ema_decay: The EMA's largest decay, in [0, 1).

    Raises:
        NonFiniteLoss: If the loss or the gradient's norm is not finite; the weights and the EMA keep their values
            from before this step, and nothing is saved (a NaN dataset would otherwise train an all-NaN model).
    """
    if not torch.isfinite(loss.detach()).all():
        raise NonFiniteLoss(f"the training loss became {loss.detach().float().mean().item()} at step {step}: check "
                            "the data for NaN/inf and lower the learning rate; nothing was saved")
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    norm = torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    if not torch.isfinite(norm):
        optimizer.zero_grad(set_to_none=True)
        raise NonFiniteLoss(f"the gradient became non-finite at step {step} (loss {loss.item():.4g}): check the "
                            "data for NaN/inf and lower the learning rate; nothing was saved")
    optimizer.step()
    decay = min(ema_decay, (1 + step) / (10 + step))
    with torch.no_grad():
        for averaged, current in zip(ema.parameters(), model.parameters()):
            averaged.lerp_(current, 1 - decay)


def loss_curve(losses: list[float]) -> list[float]:
    """Mean loss over up to ``LOSS_CURVE_POINTS`` equal windows of steps."""
    windows = torch.tensor(losses).tensor_split(min(LOSS_CURVE_POINTS, len(losses)))
    return [window.mean().item() for window in windows]
