"""The movie pair sampler: positives share the moment and differ in subject; batches hold distinct moments."""

from __future__ import annotations

import pandas as pd
import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from eegphase.objectives.movie_pairs import MoviePairSampler, PairDataset


def _windows() -> pd.DataFrame:
    rows = []
    for subject in ("s1", "s2", "s3", "s4"):
        for time_bin in range(10):
            rows.append(("DespicableMe", time_bin, subject))
    rows.append(("DespicableMe", 10, "s1"))  # only s1 reached this moment: needs the fallback
    for time_bin in range(6):
        rows.append(("ThePresent", time_bin, "s5"))  # a movie nobody else watched: no positive
        rows.append(("FunwithFractals", time_bin, "s2"))
        rows.append(("FunwithFractals", time_bin, "s3"))
    return pd.DataFrame(rows, columns=["movie", "time_bin", "subject"]).sample(frac=1.0, random_state=0)


def _pairs(sampler: MoviePairSampler) -> list[tuple[int, int]]:
    return [pair for batch in sampler for pair in batch]


def test_same_time_positives_share_moment_and_differ_in_subject():
    table = _windows().reset_index(drop=True)
    sampler = MoviePairSampler(table, batch_size=4, mode="same_time", drop_last=False)
    pairs = _pairs(sampler)
    fallback_row = table.index[(table.movie == "DespicableMe") & (table.time_bin == 10)][0]
    anchors = [a for a, _ in pairs]
    assert sorted(anchors) == sorted(set(anchors))  # every anchor once per epoch
    assert set(anchors) == set(table.index[table.movie != "ThePresent"])
    for anchor, positive in pairs:
        a, p = table.loc[anchor], table.loc[positive]
        assert a.movie == p.movie and a.subject != p.subject
        if anchor != fallback_row:
            assert a.time_bin == p.time_bin
    _, fallback_positive = next(pair for pair in pairs if pair[0] == fallback_row)
    assert table.loc[fallback_positive].movie == "DespicableMe"
    assert table.loc[fallback_positive].time_bin != 10
    assert sampler.fallback_fraction == pytest.approx(1 / len(anchors))


@pytest.mark.parametrize("mode", ["same_time", "any_time"])
def test_batches_hold_distinct_moments_and_are_full(mode):
    table = _windows().reset_index(drop=True)
    sampler = MoviePairSampler(table, batch_size=5, mode=mode, seed=3, drop_last=True)
    assert len(sampler) > 0
    for batch in sampler:
        assert len(batch) == 5
        moment = [(table.movie[a], table.time_bin[a], table.movie[p], table.time_bin[p]) for a, p in batch]
        anchor_moments = [m[:2] for m in moment]
        assert len(set(anchor_moments)) == 5  # distinct moments per batch
        for i, (_, _, *positive_moment) in enumerate(moment):
            # no negative (another pair's positive) shows an anchor's moment
            others = anchor_moments[:i] + anchor_moments[i + 1 :]
            assert tuple(positive_moment) not in others
    if mode == "any_time":
        assert sampler.fallback_fraction == 1.0
        for anchor, positive in _pairs(sampler):
            assert table.movie[anchor] == table.movie[positive]
            assert table.subject[anchor] != table.subject[positive]


def test_epochs_reshuffle_and_an_epoch_is_reproducible():
    table = _windows().reset_index(drop=True)
    sampler = MoviePairSampler(table, batch_size=4, seed=7)
    first = list(sampler)
    assert list(sampler) == first
    sampler.set_epoch(1)
    assert list(sampler) != first


class _LabelledWindows(Dataset):
    """Each item is a tiny tensor carrying its own row number, so pairs can be traced through a DataLoader."""

    def __len__(self) -> int:
        return 64

    def __getitem__(self, index: int) -> torch.Tensor:
        return torch.tensor([float(index)])


def test_works_as_a_dataloader_batch_sampler():
    table = _windows().reset_index(drop=True)
    sampler = MoviePairSampler(table, batch_size=4, seed=1)
    loader = DataLoader(PairDataset(_LabelledWindows()), batch_sampler=sampler)
    anchors, positives = next(iter(loader))
    expected = next(iter(sampler))
    assert anchors.shape == (4, 1) and positives.shape == (4, 1)
    assert [(int(a), int(p)) for a, p in zip(anchors[:, 0], positives[:, 0], strict=True)] == expected


def test_bad_tables_are_refused_with_names():
    table = _windows()
    with pytest.raises(KeyError, match="time_bin"):
        MoviePairSampler(table.drop(columns="time_bin"), batch_size=2)
    with pytest.raises(ValueError, match="fewer than batch_size"):
        MoviePairSampler(table, batch_size=64)
    lonely = pd.DataFrame({"movie": ["A", "A"], "time_bin": [0, 1], "subject": ["s1", "s1"]})
    with pytest.raises(ValueError, match="no window has a positive"):
        MoviePairSampler(lonely, batch_size=2)


def test_pair_shares_count_same_moment_and_fallback_pairs():
    table = _windows().reset_index(drop=True)
    sampler = MoviePairSampler(table, batch_size=4, mode="same_time", drop_last=False)
    pairs = _pairs(sampler)
    moment = list(zip(table.movie, table.time_bin, strict=True))
    same = sum(moment[a] == moment[p] for a, p in pairs) / len(pairs)
    shares = sampler.pair_shares()
    assert shares["same_unit"] == pytest.approx(same) and shares["fallback"] == pytest.approx(1 / len(pairs))
    assert shares["same_unit"] == pytest.approx(1 - 1 / len(pairs))  # only the lone moment falls back
    first = [list(sampler)[0]]  # the pairs given, e.g. the batches one process trains on
    assert sampler.pair_shares(first)["same_unit"] == pytest.approx(
        sum(moment[a] == moment[p] for a, p in first[0]) / len(first[0])
    )
    any_time = MoviePairSampler(table, batch_size=4, mode="any_time", drop_last=False).pair_shares()
    assert any_time["fallback"] == 1.0 and any_time["same_unit"] < 0.5
