"""Rank-sharded training orders: the ranks' batches of one step make up the single-process batch."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from eegphase.engine.loop import _set_sampler_epoch
from eegphase.engine.sampler import ShardedBatchSampler, ShardedShuffleSampler


def _batches(sampler: ShardedShuffleSampler) -> list[list[int]]:
    items = list(sampler)
    return [items[i : i + sampler.batch_size] for i in range(0, len(items), sampler.batch_size)]


@pytest.mark.parametrize("world_size", [2, 3])
def test_ranks_together_take_the_single_process_batches(world_size):
    single = _batches(ShardedShuffleSampler(103, 4 * world_size, seed=5))
    ranks = [
        _batches(ShardedShuffleSampler(103, 4, seed=5, rank=r, world_size=world_size))
        for r in range(world_size)
    ]
    assert len({len(r) for r in ranks}) == 1  # every rank takes as many steps
    assert len(ranks[0]) == len(single) == 103 // (4 * world_size)
    for step, batch in enumerate(single):
        assert sorted(batch) == sorted(i for rank in ranks for i in rank[step])
    seen = [i for rank in ranks for batch in rank for i in batch]
    assert len(seen) == len(set(seen))  # no window twice in an epoch


def test_order_depends_on_seed_and_epoch_only():
    a, b = ShardedShuffleSampler(50, 5, seed=1), ShardedShuffleSampler(50, 5, seed=1)
    first = list(a)
    assert list(a) == first == list(b)  # iterating again, or another instance: the same order
    a.set_epoch(1)
    assert list(a) != first and sorted(a) == sorted(first)
    assert list(ShardedShuffleSampler(50, 5, seed=2)) != first


def test_max_batches_caps_each_rank_and_len_matches():
    sampler = ShardedShuffleSampler(100, 4, seed=0, rank=1, world_size=2, max_batches=3)
    assert len(list(sampler)) == len(sampler) == 12
    with pytest.raises(ValueError, match="one batch of 8 on each of 2 ranks"):
        ShardedShuffleSampler(10, 8, seed=0, rank=0, world_size=2)
    with pytest.raises(ValueError, match="rank 2"):
        ShardedShuffleSampler(10, 2, seed=0, rank=2, world_size=2)


class _Plan:
    """A batch sampler whose batches name the epoch they were planned for."""

    def __init__(self, n_batches: int):
        self.n_batches, self.epoch = n_batches, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        return iter([[self.epoch * 100 + i] for i in range(self.n_batches)])

    def __len__(self) -> int:
        return self.n_batches


def test_batch_sampler_shards_caps_and_follows_epochs_through_a_loader():
    data = TensorDataset(torch.arange(1000))
    shards = [ShardedBatchSampler(_Plan(7), rank, 2, max_batches=2) for rank in range(2)]
    assert [list(s) for s in shards] == [[[0], [2]], [[1], [3]]] and len(shards[0]) == 2
    assert len(ShardedBatchSampler(_Plan(7), 0, 2)) == 3  # 7 batches: 3 per rank, the odd one dropped
    loader = DataLoader(data, batch_sampler=ShardedBatchSampler(_Plan(3)))
    _set_sampler_epoch(loader, 4)  # what the Trainer does each epoch: it reaches the batch sampler
    assert [b[0].tolist() for b in loader] == [[400], [401], [402]]
    fixed = DataLoader(data, batch_sampler=ShardedBatchSampler(_Plan(3), follow_epochs=False))
    _set_sampler_epoch(fixed, 4)
    assert [b[0].tolist() for b in fixed] == [[0], [1], [2]]  # evaluation batches stay put
