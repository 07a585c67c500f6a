"""Pair modes without movies: positives share the recording label across subjects (same_label) or the recording
(same_recording); batches hold distinct recordings; an epoch's plan is fixed by (seed, epoch) and shards by rank."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eegphase.engine.sampler import ShardedBatchSampler
from eegphase.objectives.pairs import PAIR_MODES, PairSampler, pair_sampler, pair_source_mode


def _windows(with_label: bool = True) -> pd.DataFrame:
    """Fixed windows of a resting-state study: 6 subjects with an eyes-closed and an eyes-open recording (as
    the pretrain windows table has them: key, subject, task, label codes), plus odd cases."""
    rows = []
    for s in range(6):
        for label, name in ((0.0, "EC"), (1.0, "EO")):
            for w in range(5):
                rows.append((f"sub{s}_{name}", f"sub{s}", "", label, w))
    for w in range(3):  # a recording whose label nobody else has: no same_label positive
        rows.append(("sub6_photic", "sub6", "", 2.0, w))
    for w in range(3):  # a recording without a label: never a same_label anchor
        rows.append(("sub7_unknown", "sub7", "", np.nan, w))
    rows.append(("sub8_EC", "sub8", "", 0.0, 0))  # a single window: no same_recording positive
    table = pd.DataFrame(rows, columns=["key", "subject", "task", "label", "window"])
    if not with_label:
        table = table.drop(columns="label")
    return table.sample(frac=1.0, random_state=0).reset_index(drop=True)


def _pairs(sampler) -> list[tuple[int, int]]:
    return [pair for batch in sampler for pair in batch]


def test_modes_and_their_windows():
    assert {"same_time", "any_time", "same_label", "same_recording"} == set(PAIR_MODES)
    assert pair_source_mode("same_time") == pair_source_mode("any_time") == "movies"
    assert pair_source_mode("same_label") == pair_source_mode("same_recording") == "pretrain"
    with pytest.raises(ValueError, match="unknown pair mode 'same_movie'"):
        pair_source_mode("same_movie")


def test_same_label_positives_share_the_label_and_differ_in_subject():
    table = _windows()
    sampler = pair_sampler(table, batch_size=4, mode="same_label", seed=0, drop_last=False)
    pairs = _pairs(sampler)
    anchors = [a for a, _ in pairs]
    assert sorted(anchors) == sorted(set(anchors))  # every anchor once per epoch
    # every labelled window whose label another subject shares; not the lone label, not the unlabelled
    assert set(anchors) == set(table.index[table["label"].isin([0.0, 1.0])])
    for anchor, positive in pairs:
        a, p = table.loc[anchor], table.loc[positive]
        assert a.label == p.label and a.subject != p.subject
    # both labels and many subjects are drawn as positives
    assert table.loc[[p for _, p in pairs], "label"].nunique() == 2
    assert table.loc[[p for _, p in pairs], "subject"].nunique() >= 5


def test_same_label_falls_back_to_the_task_without_a_label():
    table = _windows(with_label=False)
    table["task"] = np.where(table["key"].str.endswith("EO"), "eyes_open", "eyes_closed")
    pairs = _pairs(pair_sampler(table, batch_size=4, mode="same_label", seed=1, drop_last=False))
    assert pairs
    for anchor, positive in pairs:
        a, p = table.loc[anchor], table.loc[positive]
        assert a.task == p.task and a.subject != p.subject
    table["label"] = np.nan  # a label column without values: the task still decides
    assert _pairs(pair_sampler(table, batch_size=4, mode="same_label", seed=1, drop_last=False)) == pairs


def test_same_recording_positives_are_another_window_of_the_recording():
    table = _windows()
    pairs = _pairs(pair_sampler(table, batch_size=4, mode="same_recording", seed=0, drop_last=False))
    anchors = [a for a, _ in pairs]
    assert sorted(anchors) == sorted(set(anchors))
    assert set(anchors) == set(table.index[table["key"] != "sub8_EC"])  # a one-window recording has none
    for anchor, positive in pairs:
        assert anchor != positive
        assert table.key[anchor] == table.key[positive]
        assert table.window[anchor] != table.window[positive]


@pytest.mark.parametrize("mode", ["same_label", "same_recording"])
def test_batches_hold_distinct_recordings_and_negatives_are_other_recordings(mode):
    table = _windows()
    sampler = pair_sampler(table, batch_size=5, mode=mode, seed=3)
    assert len(sampler) > 0
    for batch in sampler:
        assert len(batch) == 5
        anchor_keys = [table.key[a] for a, _ in batch]
        assert len(set(anchor_keys)) == 5
        for i, (_, positive) in enumerate(batch):
            assert table.key[positive] not in anchor_keys[:i] + anchor_keys[i + 1 :]


@pytest.mark.parametrize("mode", ["same_label", "same_recording"])
def test_an_epoch_is_fixed_by_seed_and_epoch(mode):
    table = _windows()
    first = list(pair_sampler(table, batch_size=4, mode=mode, seed=7))
    again = pair_sampler(table, batch_size=4, mode=mode, seed=7)
    assert list(again) == first  # another sampler, same (seed, epoch): the same batches
    again.set_epoch(1)
    second = list(again)
    assert second != first
    other = pair_sampler(table, batch_size=4, mode=mode, seed=7)
    other.set_epoch(1)
    assert list(other) == second
    assert list(pair_sampler(table, batch_size=4, mode=mode, seed=8)) != first


def test_ranks_share_an_epoch_without_overlap():
    sampler = pair_sampler(_windows(), batch_size=4, mode="same_recording", seed=2)
    shares = [list(ShardedBatchSampler(sampler, rank, 2)) for rank in range(2)]
    assert shares[0] and len(shares[0]) == len(shares[1])
    flat = [tuple(b) for share in shares for b in share]
    assert len(set(flat)) == len(flat)
    assert set(flat) <= {tuple(b) for b in sampler}


def test_windows_that_cannot_make_pairs_are_refused_with_names():
    table = _windows()
    with pytest.raises(
        ValueError, match="only 14 distinct recordings have positives, fewer than batch_size 32"
    ):
        pair_sampler(table, batch_size=32, mode="same_recording")
    one_label = table[table["label"] == 0.0]
    with pytest.raises(ValueError, match="same 'label'.*data.label_pattern.*contrastive=same_recording"):
        pair_sampler(one_label, batch_size=2, mode="same_label")
    with pytest.raises(KeyError, match="set data.label_pattern"):  # folder without label_pattern: task ''
        pair_sampler(table.drop(columns="label"), batch_size=2, mode="same_label")
    lonely = table[table["subject"] == "sub0"]
    with pytest.raises(ValueError, match="no window has a positive"):
        pair_sampler(lonely, batch_size=2, mode="same_label")
    with pytest.raises(KeyError, match="key"):
        pair_sampler(table.drop(columns="key"), batch_size=2, mode="same_recording")
    assert isinstance(pair_sampler(table, 2, "same_label"), PairSampler)
