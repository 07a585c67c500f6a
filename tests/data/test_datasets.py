"""The torch Datasets of each mode, read through a real DataLoader with worker processes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from eegphase.data.datasets import make_dataset
from eegphase.data.montage import hydrocel_names
from eegphase.data.splits import SplitConfig


def test_challenge1_items_are_the_cached_samples_with_their_rt(prepared):
    cache, manifest, _, tables = prepared
    ds = make_dataset(cache, "challenge1", "train")
    assert 0 < len(ds) < len(tables["challenge1"])
    item = ds[3]
    row = ds.windows.iloc[3]
    assert item["x"].shape == (129, 200) and item["x"].dtype == torch.float32
    expected = np.asarray(manifest.entry(row["key"]).memmap())[row["start"] : row["stop"]].T
    assert np.array_equal(item["x"].numpy(), expected)
    assert item["y"].item() == pytest.approx(row["rt_from_stimulus"])
    assert item["channel_mask"].all()


def test_splits_partition_subjects(prepared):
    cache = prepared[0]
    parts = {
        s: set(make_dataset(cache, "challenge2", s).windows["subject"]) for s in ("train", "val", "test")
    }
    assert parts["train"] and parts["val"] and parts["test"]
    assert not (parts["train"] & parts["val"]) and not (parts["train"] & parts["test"])
    assert not (parts["val"] & parts["test"])
    other = make_dataset(cache, "challenge2", "train", SplitConfig(seed=1))
    assert set(other.windows["subject"]) != parts["train"] or len(parts["train"]) <= 1


def test_challenge2_random_crop_in_training_centre_crop_in_eval(prepared):
    cache = prepared[0]
    train = make_dataset(cache, "challenge2", "train", crop_s=2.0)
    evaluation = make_dataset(cache, "challenge2", "train", crop_s=2.0, train=False)
    assert not train.windows["externalizing"].isna().any()
    full = make_dataset(cache, "challenge2", "train")
    window = full[0]["x"].numpy()
    assert window.shape == (129, 400)
    assert np.array_equal(evaluation[0]["x"].numpy(), window[:, 100:300])
    offsets = set()
    for epoch in range(20):  # crops are a function of (seed, epoch, window): a new epoch, a new draw
        train.set_epoch(epoch)
        crop = train[0]["x"].numpy()
        assert crop.shape == (129, 200)
        offsets.add(next(o for o in range(201) if np.array_equal(window[:, o : o + 200], crop)))
    assert len(offsets) > 1


def test_mixed_places_tuh_on_hydrocel_with_a_mask(prepared):
    cache = prepared[0]
    ds = make_dataset(cache, "mixed", None)
    is_tuh = (ds.windows["dataset"] == "tuh").to_numpy()
    tuh_item, hbn_item = ds[int(np.flatnonzero(is_tuh)[0])], ds[int(np.flatnonzero(~is_tuh)[0])]
    assert tuh_item["x"].shape == hbn_item["x"].shape == (129, 200)
    mask = tuh_item["channel_mask"]
    assert 15 <= int(mask.sum()) <= 23
    assert (tuh_item["x"][~mask] == 0).all() and tuh_item["x"][mask].abs().sum() > 0
    assert hbn_item["channel_mask"].all()
    assert len(ds.layout) == len(hydrocel_names())


def test_movies_items_carry_movie_and_time_bin(prepared):
    cache = prepared[0]
    ds = make_dataset(cache, "movies", None)
    item = ds[5]
    assert ds.movies[item["movie"]] == ds.windows.iloc[5]["movie"]
    assert item["time_bin"] == ds.windows.iloc[5]["time_bin"]


def test_dataloader_with_workers_matches_direct_reads(prepared):
    cache = prepared[0]
    ds = make_dataset(cache, "pretrain", "train")
    loader = DataLoader(ds, batch_size=16, shuffle=False, num_workers=2)
    batch = next(iter(loader))
    assert batch["x"].shape == (16, 129, 200)
    direct = torch.stack([ds[i]["x"] for i in range(16)])
    assert torch.equal(batch["x"], direct)
    assert batch["y"].shape == (16, 3)


def test_unknown_target_and_mode_are_named(prepared):
    cache = prepared[0]
    with pytest.raises(KeyError, match="not_a_column"):
        make_dataset(cache, "challenge2", "train", targets=["not_a_column"])
    with pytest.raises(KeyError, match="challenge3"):
        make_dataset(cache, "challenge3", "train")
