import numpy as np
import pytest
import torch
from torch import nn

from adaptstep.policies.action_diffusion import MinMaxNormalizer, chunk_diffusion_loss, chunk_schedule, sample_chunks
from adaptstep.policies.windows import first_window_weights, scene_starts, window_indices, window_scene_starts


class ConditionalMLP(nn.Module):
    """ε̂ from the flattened chunk, the time and a one-hot condition."""

    def __init__(self, shape: tuple[int, int], classes: int) -> None:
        super().__init__()
        self.shape, size = shape, shape[0] * shape[1]
        self.net = nn.Sequential(nn.Linear(size + classes + 1, 128), nn.SiLU(), nn.Linear(128, 128), nn.SiLU(),
                                 nn.Linear(128, size))

    def forward(self, x, t, condition):
        inputs = torch.cat([x.flatten(1), condition["onehot"], t[:, None].float()], dim=1)
        return self.net(inputs).reshape(len(x), *self.shape)


def test_conditional_chunks_are_learned_and_sampled_in_few_steps():
    torch.manual_seed(0)
    shape, schedule = (4, 2), chunk_schedule()
    targets = torch.tensor([[0.5, -0.5], [-0.6, 0.7]])[:, None, :].expand(2, 4, 2)  # one chunk per condition
    network = ConditionalMLP(shape, 2)
    optimizer = torch.optim.Adam(network.parameters(), lr=3e-3)
    generator, losses = torch.Generator().manual_seed(0), []
    for _ in range(1500):
        labels = torch.randint(2, (64,), generator=generator)
        loss = chunk_diffusion_loss(network, targets[labels], {"onehot": nn.functional.one_hot(labels, 2).float()},
                                    schedule, generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert np.mean(losses[-100:]) < 0.5 * np.mean(losses[:100])
    for label in (0, 1):
        condition = {"onehot": nn.functional.one_hot(torch.full((16,), label), 2).float()}
        chunks, nfe = sample_chunks(network, condition, 16, shape, schedule, steps=5, solver="dpmpp2m", seed=1)
        assert nfe == 5 and chunks.shape == (16, 4, 2)
        assert torch.all(chunks.abs() <= 1)
        assert torch.allclose(chunks.mean(0), targets[label], atol=0.1)


def test_sampling_repeats_with_a_seed_and_rejects_bad_settings():
    network, schedule = ConditionalMLP((4, 2), 2), chunk_schedule()
    condition = {"onehot": torch.eye(2)}
    first, _ = sample_chunks(network, condition, 2, (4, 2), schedule, steps=3, seed=7)
    second, _ = sample_chunks(network, condition, 2, (4, 2), schedule, steps=3, seed=7)
    assert torch.equal(first, second)
    with pytest.raises(ValueError, match="steps"):
        sample_chunks(network, condition, 2, (4, 2), schedule, steps=0)
    with pytest.raises(ValueError, match="solver"):
        sample_chunks(network, condition, 2, (4, 2), schedule, solver="rk4")


def test_min_max_normalizer_maps_the_range_to_unit_interval_and_back():
    data = torch.tensor([[0.0, 5.0, 1.0], [2.0, 7.0, 1.0], [1.0, 6.0, 1.0]])
    normalizer = MinMaxNormalizer.fit(data)
    normalized = normalizer.normalize(data)
    assert torch.allclose(normalized[:, :2].min(0).values, torch.tensor([-1.0, -1.0]))
    assert torch.allclose(normalized[:, :2].max(0).values, torch.tensor([1.0, 1.0]))
    assert torch.allclose(normalizer.unnormalize(normalized), data)


def test_windows_pad_at_episode_edges_like_diffusion_policy():
    observations, actions = window_indices(np.array([3, 5]), obs_horizon=2, pred_horizon=4)
    assert observations.tolist() == [[0, 0], [0, 1], [1, 2], [3, 3], [3, 4]]
    assert actions.tolist() == [[0, 0, 1, 2], [0, 1, 2, 2], [1, 2, 2, 2], [3, 3, 4, 4], [3, 4, 4, 4]]
    history, _ = window_indices(np.array([3]), obs_horizon=2, pred_horizon=4, history=3)
    assert history.tolist() == [[0, 0, 0], [0, 0, 1], [0, 1, 2]]
    for bad, name in (({"obs_horizon": 0, "pred_horizon": 4}, "obs_horizon"),
                      ({"obs_horizon": 2, "pred_horizon": 4, "history": -1}, "history")):
        with pytest.raises(ValueError, match=name):
            window_indices(np.array([3]), **bad)
    with pytest.raises(ValueError, match="episode_ends"):
        window_indices(np.array([3, 2]), 2, 4)


def test_first_window_weights_weigh_each_episodes_first_window():
    weights = first_window_weights(np.array([3, 5]), 10.0)
    assert weights.tolist() == [10.0, 1.0, 1.0, 10.0, 1.0]  # windows 0 and 3 start the episodes
    draws = torch.multinomial(weights, 23_000, replacement=True, generator=torch.Generator().manual_seed(0))
    assert abs((draws == 0).float().mean().item() - 10 / 23) < 0.01


def test_window_scene_starts_are_episode_starts_without_a_jump():
    assert window_scene_starts(np.array([3, 7])).tolist() == [0, 0, 0, 3, 3, 3, 3]


def test_every_target_jump_starts_a_scene():
    # episode 0 (steps 0-4) sees the target's first jump from step 2 and its second from step 4, episode 1 (steps
    # 5-9) its first from step 8; a count carried over an episode boundary must not start a scene there
    jumps = np.array([0, 0, 1, 1, 2, 0, 0, 0, 1, 1])
    ends = np.array([5, 10])
    assert scene_starts(ends, jumps).tolist() == [1, 0, 1, 0, 1, 1, 0, 0, 1, 0]
    assert window_scene_starts(ends, jumps).tolist() == [0, 0, 2, 2, 4, 5, 5, 5, 8, 8]
    assert first_window_weights(ends, 5.0, jumps).tolist() == [5, 1, 5, 1, 5, 5, 1, 1, 5, 1]
    with pytest.raises(ValueError, match="target_jumps"):
        scene_starts(ends, jumps[:-1])


def test_windows_where_the_expert_waits_are_not_drawn_and_its_reaction_is_weighed():
    # the first jump (step 2) the expert meets at once, the second (step 4) one step late, episode 1's (step 8)
    # two steps late
    jumps = np.array([0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 1, 1])
    waits = np.array([0, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0], dtype=bool)
    ends = np.array([6, 12])
    weights = first_window_weights(ends, 5.0, jumps, waits)
    assert weights.tolist() == [5, 1, 5, 1, 0, 5, 5, 1, 0, 0, 5, 1]
    with pytest.raises(ValueError, match="expert_waits"):
        first_window_weights(ends, 5.0, jumps, waits[:-1])
