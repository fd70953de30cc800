"""The non-diffusion parts of Trajectory Diffuser (Huang et al., ECCV 2024).

They are an autoregressive state model, an inverse-dynamics MLP and a critic.

``CausalTransformer``: s_{t+1} = s_t + f(s_{≤t}, c), a pre-norm transformer encoder over state tokens with a
causal mask (TD's released code defines one but never passes it, so its training sees the future), a learned
position embedding and the condition c embedded and added to every token. ``rollout`` feeds its predictions back
to propose a trajectory. ``InverseDynamics``: a_t = f(s_t, s_{t+1}) and ``Critic``: Q(s, a), both MLPs with
two hidden layers of 256 ReLU units, as in the paper. All work in normalised units.
"""

from __future__ import annotations

import torch
from torch import nn


def mlp(inputs: int, outputs: int, hidden: int = 256) -> nn.Sequential:
    """inputs → hidden → hidden → outputs with ReLU."""
    return nn.Sequential(nn.Linear(inputs, hidden), nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(),
                         nn.Linear(hidden, outputs))


class CausalTransformer(nn.Module):
    """Next-state prediction over up to ``context`` states (batch, length, obs_dim) given c (batch, condition_dim).

    Args:
        obs_dim: The state's dimension.
        condition_dim: The condition's dimension.
        context: The most states it attends to.
        width: The token width.
        layers: The encoder layers.
        heads: The attention heads.
    """

    def __init__(self, obs_dim: int, condition_dim: int, context: int, width: int = 128, layers: int = 2,
                 heads: int = 4) -> None:
        super().__init__()
        self.context = context
        self.state_embed = nn.Linear(obs_dim, width)
        self.condition_embed = nn.Linear(condition_dim, width)
        self.position = nn.Parameter(torch.zeros(context, width))
        layer = nn.TransformerEncoderLayer(width, heads, 4 * width, dropout=0.0, batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.head = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, obs_dim))

    def forward(self, states: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        """ŝ_{t+1} for every position t; position t attends to positions ≤ t only."""
        length = states.shape[1]
        if length > self.context:
            raise ValueError(f"states may hold at most context = {self.context} steps, got {length}")
        tokens = self.state_embed(states) + self.condition_embed(condition)[:, None] + self.position[:length]
        mask = nn.Transformer.generate_square_subsequent_mask(length, device=states.device, dtype=tokens.dtype)
        return states + self.head(self.encoder(tokens, mask=mask, is_causal=True))

    @torch.no_grad()
    def rollout(self, state: torch.Tensor, condition: torch.Tensor, steps: int) -> torch.Tensor:
        """``state`` followed by ``steps`` fed-back predictions, shape (batch, steps + 1, obs_dim).

        Each step runs only the newest token through the layers, attending to the keys and values cached for the
        earlier ones: the same result as ``forward`` on the growing sequence, without recomputing the past.
        """
        if steps + 1 > self.context:
            raise ValueError(f"a rollout may hold at most context = {self.context} states, got steps + 1 = "
                             f"{steps + 1}")
        condition_token = self.condition_embed(condition)
        caches: list[tuple[list, list]] = [([], []) for _ in self.encoder.layers]
        states = [state]
        for position in range(steps):
            h = self.state_embed(states[-1]) + condition_token + self.position[position]
            for layer, (keys, values) in zip(self.encoder.layers, caches):
                h = h + _cached_self_attention(layer.self_attn, layer.norm1(h), keys, values)
                h = h + layer.linear2(layer.activation(layer.linear1(layer.norm2(h))))
            states.append(states[-1] + self.head(h))
        return torch.stack(states, dim=1)


def _cached_self_attention(attention: nn.MultiheadAttention, x: torch.Tensor, keys: list, values: list) -> torch.Tensor:
    """``attention`` of the newest token x (batch, width) over itself and the earlier tokens, whose per-head keys
    and values are in ``keys`` / ``values`` (appended to here)."""
    batch, width = x.shape
    heads = attention.num_heads
    query, key, value = nn.functional.linear(x, attention.in_proj_weight, attention.in_proj_bias).chunk(3, dim=-1)
    keys.append(key.reshape(batch, heads, 1, width // heads))
    values.append(value.reshape(batch, heads, 1, width // heads))
    out = nn.functional.scaled_dot_product_attention(query.reshape(batch, heads, 1, width // heads),
                                                     torch.cat(keys, dim=2), torch.cat(values, dim=2))
    return attention.out_proj(out.reshape(batch, width))


class InverseDynamics(nn.Module):
    """â_t = f(s_t, s_{t+1})."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int = 256) -> None:
        super().__init__()
        self.network = mlp(2 * obs_dim, act_dim, hidden)

    def forward(self, state: torch.Tensor, next_state: torch.Tensor) -> torch.Tensor:
        """â_t for each row."""
        return self.network(torch.cat([state, next_state], dim=-1))


class Critic(nn.Module):
    """Q(s, a), one value per row."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: int = 256) -> None:
        super().__init__()
        self.network = mlp(obs_dim + act_dim, 1, hidden)

    def forward(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        """Q(s, a) for each row."""
        return self.network(torch.cat([state, action], dim=-1)).squeeze(-1)
