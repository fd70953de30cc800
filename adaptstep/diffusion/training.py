"""Train a ``NeuralDenoiser`` on a data set with the continuous-time DDPM noise loss, and save/load it.

Loss (Ho et al. 2020; Kingma et al. 2021, continuous time): E_{x0, t ~ U[t_min, t_max], ε ~ N(0, I)}
|ε̂(α_t x0 + σ_t ε, t) − ε|², minimised with Adam (gradient norm clipped at 1). Sampling uses an
exponential moving average of the weights with decay min(ema_decay, (1 + k)/(10 + k)) at step k.
"""

import copy
import time
from pathlib import Path

import torch
from tqdm.auto import tqdm

from adaptstep.diffusion.networks import DenoiserConfig, NeuralDenoiser
from adaptstep.nn.checkpoints import load_checkpoint, save_checkpoint
from adaptstep.nn.data import load_dataset
from adaptstep.nn.device import resolve_device
from adaptstep.nn.training import check_training_settings, loss_curve, training_step

CHECKPOINT_NAME = "denoiser.pt"


@torch.enable_grad()  # also when called under torch.no_grad()
def fit_denoiser(
    x: torch.Tensor,
    config: DenoiserConfig,
    steps: int = 8000,
    batch_size: int = 256,
    lr: float = 1e-3,
    ema_decay: float = 0.999,
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = True,
) -> tuple[NeuralDenoiser, list[float]]:
    """Train a denoiser on the rows of ``x`` (minibatches drawn with replacement).

    Args:
        x: The training data, shape (n, config.dim).
        config: The architecture.
        steps: The training steps.
        batch_size: The minibatch size.
        lr: Adam's learning rate.
        ema_decay: The EMA's decay cap.
        seed: The seed of initialisation, batches, times and noise (all drawn on the CPU).
        device: The device; ``"auto"`` picks one.
        progress: Whether to show a progress bar.

    Returns:
        (EMA model in eval mode, per-step losses).

    Raises:
        ValueError: If a setting is out of range or ``x`` does not match ``config.dim``.
    """
    check_training_settings(steps, batch_size, lr, ema_decay)
    if x.ndim != 2 or x.shape[1] != config.dim:
        raise ValueError(f"x must have shape (n, {config.dim}) to match config.dim, got {tuple(x.shape)}")
    device = resolve_device(device)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = NeuralDenoiser(config).to(device)
    ema = copy.deepcopy(model).requires_grad_(False)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, foreach=True)
    generator = torch.Generator().manual_seed(seed)
    x = x.to(torch.float32)
    schedule = model.schedule
    losses = []
    for step in tqdm(range(steps), desc="denoiser", disable=not progress, mininterval=1.0):
        x0 = x[torch.randint(len(x), (batch_size,), generator=generator)].to(device)
        uniform = torch.rand(batch_size, generator=generator, dtype=torch.float64)
        t = (schedule.t_min + (schedule.t_max - schedule.t_min) * uniform).to(device)
        noise = torch.randn(batch_size, config.dim, generator=generator).to(device)
        alpha = schedule.alpha(t).to(torch.float32).unsqueeze(1)
        sigma = schedule.sigma(t).to(torch.float32).unsqueeze(1)
        loss = torch.mean((model(alpha * x0 + sigma * noise, t) - noise) ** 2)
        training_step(model, ema, optimizer, loss, step, ema_decay)
        losses.append(loss.item())
    return ema.eval(), losses


def save_denoiser(model: NeuralDenoiser, path: str | Path, metadata: dict | None = None) -> Path:
    """Write config, weights (on the CPU) and ``metadata`` to ``path`` atomically.

    Returns:
        ``path``.
    """
    return save_checkpoint(model, model.config.to_dict(), metadata or {}, path)


def load_denoiser(path: str | Path, device: str | torch.device = "auto") -> NeuralDenoiser:
    """The ``NeuralDenoiser`` saved at ``path``, in eval mode with gradients off for its parameters.

    Its metadata is ``model.metadata``.

    Args:
        path: A checkpoint file or a folder holding ``denoiser.pt``.
        device: The device; ``"auto"`` picks one.
    """
    path = Path(path)
    if path.is_dir():
        path = path / CHECKPOINT_NAME
    return load_checkpoint(path, lambda config: NeuralDenoiser(DenoiserConfig(**config)), "denoiser", device)





def train_denoiser(
    data: str,
    out: str | Path,
    steps: int = 8000,
    batch_size: int = 256,
    lr: float = 1e-3,
    schedule: str = "linear",
    seed: int = 0,
    device: str | torch.device = "auto",
    progress: bool = True,
    width: int = 256,
    depth: int = 3,
    ema_decay: float = 0.999,
    overwrite: bool = False,
) -> Path:
    """Train a denoiser on the training split of a data set and write ``out/denoiser.pt``.

    The checkpoint holds the config, the EMA weights and metadata: data, sizes, hyperparameters,
    ``final_loss`` (mean loss of the last 10% of steps), ``loss_curve`` and wall-clock ``seconds``.

    Args:
        data: The data set's name.
        out: The output folder.
        steps: The training steps.
        batch_size: The minibatch size.
        lr: Adam's learning rate.
        schedule: The noise schedule's name.
        seed: The seed of data, initialisation and training.
        device: The device; ``"auto"`` picks one.
        progress: Whether to show a progress bar.
        width: The network's hidden width.
        depth: The network's residual blocks.
        ema_decay: The EMA's decay cap.
        overwrite: Whether to replace an existing checkpoint.

    Returns:
        The checkpoint's path.

    Raises:
        FileExistsError: If the checkpoint exists and ``overwrite`` is False.
    """
    path = Path(out) / CHECKPOINT_NAME
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path} exists; pass overwrite=True to replace it")
    x, _ = load_dataset(data, seed=seed)
    config = DenoiserConfig(dim=x.shape[1], width=width, depth=depth, schedule=schedule)
    start = time.perf_counter()
    model, losses = fit_denoiser(x, config, steps, batch_size, lr, ema_decay, seed, device, progress)
    seconds = time.perf_counter() - start
    metadata = {
        "data": data,
        "train_size": len(x),
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        "ema_decay": ema_decay,
        "seed": seed,
        "device": str(resolve_device(device)),
        "final_loss": sum(losses[-max(1, steps // 10) :]) / max(1, steps // 10),
        "loss_curve": loss_curve(losses),
        "seconds": seconds,
    }
    return save_denoiser(model, path, metadata)
