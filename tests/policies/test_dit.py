import numpy as np
import pytest
import torch

from adaptstep.policies.action_diffusion import chunk_diffusion_loss, chunk_schedule, sample_chunks
from adaptstep.policies.dit import DiTActionHead, timestep_embedding


def condition(batch: int, tokens: int = 3, width: int = 32, global_dim: int = 5, seed: int = 0) -> dict:
    generator = torch.Generator().manual_seed(seed)
    return {"tokens": torch.randn(batch, tokens, width, generator=generator),
            "global": torch.randn(batch, global_dim, generator=generator)}


def test_output_is_exactly_zero_at_initialisation():
    head = DiTActionHead(action_dim=2, pred_horizon=8, global_dim=5, width=32, depth=2, heads=2)
    x, t = torch.randn(4, 8, 2), torch.rand(4, dtype=torch.float64)
    assert torch.equal(head(x, t, condition(4)), torch.zeros(4, 8, 2))
    default = DiTActionHead(action_dim=2, pred_horizon=16, global_dim=6)
    assert (default.width, len(default.blocks), default.blocks[0].attention.heads) == (128, 4, 4)


def test_tokens_and_global_condition_change_the_output_after_training_steps():
    torch.manual_seed(0)
    head = DiTActionHead(action_dim=2, pred_horizon=8, global_dim=5, width=32, depth=2, heads=2)
    optimizer = torch.optim.Adam(head.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(0)
    for step in range(3):  # zero-init: the final layer moves first, the modulation and gates from the next step on
        loss = chunk_diffusion_loss(head, torch.rand(16, 8, 2) * 2 - 1, condition(16, seed=step), chunk_schedule(),
                                    generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    x, t, base = torch.randn(4, 8, 2), torch.full((4,), 0.5, dtype=torch.float64), condition(4)
    with torch.no_grad():
        out = head(x, t, base)
        other_tokens = head(x, t, {**base, "tokens": condition(4, seed=1)["tokens"]})
        other_global = head(x, t, {**base, "global": base["global"] + 1})
        other_time = head(x, t / 2, base)
    assert out.abs().max() > 0
    for changed in (other_tokens, other_global, other_time):
        assert (changed - out).abs().max() > 1e-5


@pytest.mark.parametrize("via", ["tokens", "global"])
def test_learns_conditional_chunks_and_samples_them_in_five_steps(via):
    torch.manual_seed(0)
    ramp = torch.linspace(-0.6, 0.6, 8)
    targets = torch.stack([torch.stack([ramp, -ramp], 1), torch.stack([-ramp.flip(0), 0.3 * ramp], 1)])
    keys = torch.randn(2, 3, 32)  # each class is a fixed set of 3 context tokens or a one-hot global vector
    schedule, generator = chunk_schedule(), torch.Generator().manual_seed(0)

    def make_condition(labels):
        if via == "tokens":
            return {"tokens": keys[labels], "global": torch.zeros(len(labels), 2)}
        return {"tokens": torch.zeros(len(labels), 3, 32), "global": torch.nn.functional.one_hot(labels, 2).float()}

    head = DiTActionHead(action_dim=2, pred_horizon=8, global_dim=2, width=32, depth=2, heads=2)
    optimizer = torch.optim.Adam(head.parameters(), lr=2e-3)
    losses = []
    for _ in range(400):
        labels = torch.randint(2, (32,), generator=generator)
        loss = chunk_diffusion_loss(head, targets[labels], make_condition(labels), schedule, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-50:]) < 0.3 * np.mean(losses[:50])
    head.eval()
    for label in (0, 1):
        labels = torch.full((8,), label)
        chunks, nfe = sample_chunks(head, make_condition(labels), 8, (8, 2), schedule, steps=5, solver="dpmpp2m",
                                    seed=1)
        assert nfe == 5 and chunks.shape == (8, 8, 2)
        assert (chunks - targets[label]).abs().mean() < 0.1


def test_timestep_embedding_and_bad_inputs():
    embedding = timestep_embedding(torch.tensor([0.0, 0.5]), 8)
    assert embedding.shape == (2, 8)
    assert torch.equal(embedding[0], torch.tensor([1.0] * 4 + [0.0] * 4))  # cos 0 = 1, sin 0 = 0
    head = DiTActionHead(action_dim=2, pred_horizon=8, global_dim=5, width=32, depth=1, heads=2)
    x, t = torch.zeros(2, 8, 2), torch.full((2,), 0.5)
    with pytest.raises(ValueError, match="tokens"):
        head(x, t, {"tokens": torch.zeros(2, 3, 16), "global": torch.zeros(2, 5)})
    with pytest.raises(ValueError, match="global"):
        head(x, t, {"tokens": torch.zeros(2, 3, 32), "global": torch.zeros(2, 4)})
    with pytest.raises(ValueError, match="x must"):
        head(torch.zeros(2, 7, 2), t, {"tokens": torch.zeros(2, 3, 32), "global": torch.zeros(2, 5)})
    with pytest.raises(ValueError, match="width"):
        DiTActionHead(action_dim=2, pred_horizon=8, global_dim=5, width=30, heads=4)
    with pytest.raises(ValueError, match="depth"):
        DiTActionHead(action_dim=2, pred_horizon=8, global_dim=5, depth=0)
