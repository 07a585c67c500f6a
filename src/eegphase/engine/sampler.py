"""Training orders that depend only on (seed, epoch) and split cleanly over torchrun ranks.

``batch_size`` is per process. With W ranks, step k of rank r is batch ``k * W + r`` of the single-process
order, so the W batches of one step together are the single-process batch of ``W * batch_size``: a run on W
ranks takes the same optimizer steps as one process with a W times larger batch (exactly, for models
without batch statistics or per-rank randomness). The order comes from (seed, epoch) alone (the engine
calls ``set_epoch``), so a resumed run continues with the order it would have had.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sized
from typing import Any

import torch
from torch.utils.data import Sampler


def _per_rank(n_batches: int, world_size: int, limit: int | None) -> int:
    """How many of ``n_batches`` each rank takes: the same count on all ranks, at most ``limit``."""
    per_rank = n_batches // world_size
    return per_rank if limit is None else min(per_rank, int(limit))


def _shard(batches: list[Any], rank: int, world_size: int, limit: int | None) -> list[Any]:
    """Rank ``rank``'s batches: every ``world_size``-th, :func:`_per_rank` of them."""
    return batches[rank : _per_rank(len(batches), world_size, limit) * world_size : world_size]


class ShardedShuffleSampler(Sampler[int]):
    """Shuffled window indices for one rank, in batches of ``batch_size`` (incomplete batches dropped).

    ``max_batches`` caps the batches per rank and epoch (the optimizer steps of an epoch, before gradient
    accumulation); an uncapped epoch covers the dataset once, split over the ranks.
    """

    def __init__(
        self,
        n_items: int,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        max_batches: int | None = None,
    ):
        if n_items < 1 or batch_size < 1:
            raise ValueError(f"need n_items >= 1 and batch_size >= 1, got {n_items} and {batch_size}")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside a world of {world_size}")
        self.batch_size = min(batch_size, n_items)
        if n_items < self.batch_size * world_size:
            raise ValueError(
                f"{n_items} windows cannot fill one batch of {self.batch_size} on each of {world_size} ranks"
            )
        self.n_items, self.seed, self.rank, self.world_size = n_items, seed, rank, world_size
        self.max_batches = max_batches
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def batches(self) -> list[torch.Tensor]:
        """This rank's batches of the current epoch."""
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        order = torch.randperm(self.n_items, generator=generator)
        whole = order[: self.n_items // self.batch_size * self.batch_size].view(-1, self.batch_size)
        return _shard(list(whole), self.rank, self.world_size, self.max_batches)

    def __iter__(self) -> Iterator[int]:
        for batch in self.batches():
            yield from batch.tolist()

    def __len__(self) -> int:
        return _per_rank(self.n_items // self.batch_size, self.world_size, self.max_batches) * self.batch_size


class ShardedBatchSampler(Sampler[list[Any]]):
    """One rank's share of another batch sampler's epoch (every ``world_size``-th batch), capped per rank.

    Used where batches are planned as a whole (the contrastive pair sampler). ``set_epoch`` is passed on,
    unless ``follow_epochs`` is false (evaluation: the same batches every epoch, comparable curves).
    """

    def __init__(
        self,
        inner: Iterable[list[Any]],
        rank: int = 0,
        world_size: int = 1,
        max_batches: int | None = None,
        follow_epochs: bool = True,
    ):
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside a world of {world_size}")
        self.inner, self.rank, self.world_size, self.max_batches = inner, rank, world_size, max_batches
        self.follow_epochs = follow_epochs

    def set_epoch(self, epoch: int) -> None:
        if self.follow_epochs and hasattr(self.inner, "set_epoch"):
            self.inner.set_epoch(epoch)

    def __iter__(self) -> Iterator[list[Any]]:
        yield from _shard(list(self.inner), self.rank, self.world_size, self.max_batches)

    def __len__(self) -> int:
        total = len(self.inner) if isinstance(self.inner, Sized) else len(list(self.inner))
        return _per_rank(total, self.world_size, self.max_batches)


class WeightedShardedSampler(ShardedShuffleSampler):
    """Like :class:`ShardedShuffleSampler`, but an epoch draws window ``i`` with probability
    ``weights[i] / sum(weights)`` (with replacement), e.g. HBN and TUH at a mixing ratio.

    An epoch has as many draws as there are windows (fewer when ``max_batches`` caps it); the draws come
    from (seed, epoch) alone and are split over the ranks exactly as the unweighted order is.
    """

    def __init__(
        self,
        weights,
        batch_size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        max_batches: int | None = None,
    ):
        weights = torch.as_tensor(weights, dtype=torch.float64).flatten()
        if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()) or float(weights.sum()) <= 0:
            raise ValueError("sampling weights must be finite, non-negative and not all zero")
        super().__init__(len(weights), batch_size, seed, rank, world_size, max_batches)
        cdf = torch.cumsum(weights, 0)
        self.cdf = cdf / cdf[-1]

    def batches(self) -> list[torch.Tensor]:
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch)
        n_batches = (
            _per_rank(self.n_items // self.batch_size, self.world_size, self.max_batches) * self.world_size
        )
        draws = torch.rand(n_batches * self.batch_size, generator=generator, dtype=torch.float64)
        # the first window whose cumulative weight exceeds the draw: never a window of weight 0
        order = torch.searchsorted(self.cdf, draws, right=True).clamp_max(self.n_items - 1)
        return _shard(list(order.view(-1, self.batch_size)), self.rank, self.world_size, self.max_batches)
