"""Random crops are a pure function of (seed, epoch, window index): no state for a resume to lose, and the same
crops whatever the DataLoader's workers."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader

from eegphase.data.datasets import make_dataset


def _crops(data, epoch: int, workers: int) -> np.ndarray:
    data.set_epoch(epoch)
    loader = DataLoader(data, batch_size=4, num_workers=workers)
    return torch.cat([batch["x"] for batch in loader]).numpy()


def test_crops_follow_seed_epoch_and_index_only(prepared):
    cache = prepared[0]
    train = make_dataset(cache, "challenge2", "train", crop_s=2.0, seed=3)
    first = _crops(train, 1, workers=0)
    fresh = make_dataset(cache, "challenge2", "train", crop_s=2.0, seed=3)  # a new process's dataset
    fresh[0], fresh[1]  # reading other windows first changes nothing
    assert np.array_equal(_crops(fresh, 1, workers=2), first)
    assert not np.array_equal(_crops(train, 2, workers=0), first)
    other_seed = make_dataset(cache, "challenge2", "train", crop_s=2.0, seed=4)
    assert not np.array_equal(_crops(other_seed, 1, workers=0), first)
