"""The vector env of DiffusionSampler-v0: N episodes whose solver steps share one batched denoiser call.

``gym.make_vec("adaptstep/DiffusionSampler-v0", num_envs=N, vectorization_mode="vector_entry_point")`` builds it.
Every step first evaluates x̂0 for all stepping episodes in one call of the denoiser (their samples stacked, each row
at its episode's time), then steps the episodes as ``SyncVectorEnv`` does; each episode's solver takes its x̂0 from
that call instead of calling the denoiser itself. The results equal N single envs up to the float rounding of the
larger batch.
"""

from __future__ import annotations

from typing import Any

import torch
from gymnasium.vector import AutoresetMode, SyncVectorEnv

from adaptstep.diffusion.env import DiffusionSamplerEnv
from adaptstep.nn.denoisers import Denoiser


class PrefetchedDenoiser:
    """A solver's denoiser that hands out the x̂0 computed for it in advance (for the very tensor x it was given),
    and calls the real denoiser for anything else.

    Args:
        denoiser: The real denoiser.
    """

    def __init__(self, denoiser: Denoiser) -> None:
        self.denoiser = denoiser
        self._prefetched: tuple[torch.Tensor, torch.Tensor] | None = None

    def prefetch(self, x: torch.Tensor, x0: torch.Tensor) -> None:
        """Hold ``x0`` as the prediction for the next call with this ``x``."""
        self._prefetched = (x, x0)

    def predict_x0(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        """The prefetched x̂0 if ``x`` is the tensor it was computed for, else the denoiser's."""
        prefetched, self._prefetched = self._prefetched, None
        if prefetched is not None and prefetched[0] is x:
            return prefetched[1]
        return self.denoiser.predict_x0(x, t)


class DiffusionSamplerVectorEnv(SyncVectorEnv):
    """N DiffusionSampler-v0 episodes stepped together, with one denoiser call per step for all of them.

    Args:
        num_envs: The number of episodes (>= 1).
        autoreset_mode: ``"NextStep"`` (default), ``"SameStep"`` or ``"Disabled"``, as ``SyncVectorEnv``.
        **kwargs: ``DiffusionSamplerEnv``'s kwargs.
    """

    def __init__(self, num_envs: int = 1, autoreset_mode: str | AutoresetMode = AutoresetMode.NEXT_STEP,
                 **kwargs: Any) -> None:
        if isinstance(num_envs, bool) or not isinstance(num_envs, int) or num_envs < 1:
            raise ValueError(f"num_envs must be an int >= 1, got {num_envs!r}")
        kwargs.pop("max_episode_steps", None)  # gym.make_vec passes the spec's (None: the env ends itself)
        super().__init__([lambda: DiffusionSamplerEnv(**kwargs)] * num_envs, autoreset_mode=autoreset_mode)
        self._proxies: list[PrefetchedDenoiser | None] = [None] * num_envs

    def step(self, actions: Any):
        """Evaluate x̂0 for every stepping episode in one denoiser call, then step them all."""
        stepping = [i for i in range(self.num_envs)
                    if not (self.autoreset_mode == AutoresetMode.NEXT_STEP and self._autoreset_envs[i])]
        processes = [self.envs[i].unwrapped.process for i in stepping]
        if processes and all(process is not None and not process.done for process in processes):
            self._prefetch(stepping, processes)
        return super().step(actions)

    def _prefetch(self, indices: list[int], processes: list[Any]) -> None:
        denoiser = processes[0].denoiser
        xs = [process.x for process in processes]
        times = torch.cat([torch.full((len(x),), process.t, dtype=torch.float64, device=x.device)
                           for x, process in zip(xs, processes, strict=True)])
        with torch.no_grad():
            x0s = denoiser.predict_x0(torch.cat(xs), times).split([len(x) for x in xs])
        for i, process, x, x0 in zip(indices, processes, xs, x0s, strict=True):
            proxy = self._proxies[i]
            if proxy is None or proxy.denoiser is not denoiser:
                proxy = self._proxies[i] = PrefetchedDenoiser(denoiser)
            process.solver.denoiser = proxy
            proxy.prefetch(x, x0)
