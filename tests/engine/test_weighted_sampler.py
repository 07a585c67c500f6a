"""WeightedShardedSampler: draws at the weights, from (seed, epoch) alone, split over ranks like the shuffle."""

from __future__ import annotations

import torch

from eegphase.engine.sampler import WeightedShardedSampler


def test_draws_follow_the_weights_and_skip_zero_weight_windows():
    weights = [0.0] + [3.0 / 100] * 100 + [7.0 / 900] * 900  # 30 % from the first group, none of window 0
    sampler = WeightedShardedSampler(weights, batch_size=50, seed=0)
    drawn = torch.tensor(list(sampler))
    assert len(drawn) == len(sampler) == 1000
    assert (drawn != 0).all()
    share = ((drawn >= 1) & (drawn <= 100)).float().mean().item()
    assert abs(share - 0.3) < 4 * (0.3 * 0.7 / 1000) ** 0.5


def test_same_seed_and_epoch_same_draws_and_ranks_split_the_single_process_order():
    weights = torch.rand(64, generator=torch.Generator().manual_seed(0)).tolist()
    one = WeightedShardedSampler(weights, 4, seed=3)
    again = WeightedShardedSampler(weights, 4, seed=3)
    assert list(one) == list(again)
    one.set_epoch(1)
    assert list(one) != list(again)
    one.set_epoch(0)
    batches = one.batches()
    ranks = [WeightedShardedSampler(weights, 4, seed=3, rank=r, world_size=2) for r in range(2)]
    for r, sampler in enumerate(ranks):
        assert [b.tolist() for b in sampler.batches()] == [b.tolist() for b in batches[r::2]]
    capped = WeightedShardedSampler(weights, 4, seed=3, max_batches=2)
    assert len(list(capped)) == len(capped) == 8
