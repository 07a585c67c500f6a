"""Placement of 10-20 channels on the HydroCel layout, and subject-level splits."""

from __future__ import annotations

import pandas as pd
import pytest

from eegphase.data.montage import hydrocel_names, layout_indices
from eegphase.data.splits import SplitConfig, assign_splits


def test_known_1020_equivalents_on_hydrocel():
    # Published 10-20 equivalents of the GSN HydroCel 129 net (EGI technical note).
    expected = {"C3": "E36", "C4": "E104", "O1": "E70", "O2": "E83", "Fz": "E11", "Pz": "E62", "Cz": "Cz"}
    names = list(expected)
    placed = [hydrocel_names()[i] for i in layout_indices(names)]
    assert dict(zip(names, placed, strict=False)) == expected


def test_placement_is_one_to_one_and_unknown_is_minus_one():
    names = ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8", "P7", "P3", "Pz", "P4", "P8",
             "O1", "O2", "NOT_AN_ELECTRODE"]  # fmt: skip
    idx = layout_indices(names)
    assert idx[-1] == -1
    assert len(set(idx[:-1].tolist())) == len(names) - 1


def _subjects(n: int) -> pd.DataFrame:
    return pd.DataFrame({"dataset": "hbn", "subject": [f"S{i:03d}" for i in range(n)], "release": ["R1"] * n})


def test_subject_splits_are_disjoint_deterministic_and_sized():
    table = assign_splits(_subjects(50), SplitConfig(seed=3))
    again = assign_splits(_subjects(50).sample(frac=1.0, random_state=1), SplitConfig(seed=3))
    assert table.set_index("subject")["split"].equals(again.set_index("subject")["split"].sort_index())
    counts = table["split"].value_counts()
    assert (counts["train"], counts["val"], counts["test"]) == (40, 5, 5)
    other = assign_splits(_subjects(50), SplitConfig(seed=4))
    assert not table["split"].equals(other["split"])


def test_each_dataset_is_split_on_its_own_and_a_second_one_moves_nothing():
    hbn = _subjects(12)
    tuh = pd.DataFrame({"dataset": "tuh", "subject": [f"T{i:03d}" for i in range(10)]})
    for seed in range(5):
        cfg = SplitConfig(seed=seed, fractions=(0.6, 0.2, 0.2))
        alone = assign_splits(hbn, cfg).set_index("subject")["split"]
        both = assign_splits(pd.concat([tuh, hbn]), cfg)
        assert both[both["dataset"] == "hbn"].set_index("subject")["split"].equals(alone)
        counts = both.groupby("dataset")["split"].value_counts().unstack()
        assert counts.loc["hbn"].to_dict() == {"test": 2, "train": 8, "val": 2}
        assert counts.loc["tuh"].to_dict() == {"test": 2, "train": 6, "val": 2}


def test_tiny_dataset_keeps_every_split():
    counts = assign_splits(_subjects(4), SplitConfig()).value_counts("split")
    assert counts["val"] == 1 and counts["test"] == 1 and counts["train"] == 2


def test_release_split_and_bad_method():
    subjects = pd.DataFrame({"dataset": "hbn", "subject": ["a", "b", "c"], "release": ["R1", "R2", "R5"]})
    cfg = SplitConfig(method="release", train_releases=("R1", "R2"), val_releases=("R5",))
    assert assign_splits(subjects, cfg).set_index("subject")["split"].to_dict() == {
        "a": "train",
        "b": "train",
        "c": "val",
    }
    with pytest.raises(ValueError, match="split.method"):
        SplitConfig.from_mapping({"method": "random"})
    with pytest.raises(KeyError, match="fractons"):
        SplitConfig.from_mapping({"fractons": [1, 0, 0]})
