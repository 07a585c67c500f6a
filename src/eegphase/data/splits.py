"""Subject-level train/val/test splits: deterministic from a seed, and the same for every mode.

Splits are drawn over every subject in the cache (not per mode), so a subject that is held out for
fine-tuning is held out of pretraining and contrastive learning as well. Each dataset is split on its own, at
the same fractions, so that another dataset in the cache (TUH beside HBN) neither takes the HBN subjects'
share of val and test nor moves which HBN subjects land there: ``data=hbn_tuh`` holds out the HBN subjects
``data=hbn`` holds out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class SplitConfig:
    method: str = "subject"  # "subject": random by subject; "release": by HBN release
    seed: int = 0
    fractions: tuple[float, float, float] = (0.8, 0.1, 0.1)
    train_releases: tuple[str, ...] = ()
    val_releases: tuple[str, ...] = ()
    test_releases: tuple[str, ...] = ()

    @classmethod
    def from_mapping(cls, cfg) -> SplitConfig:
        values = dict(cfg)
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise KeyError(
                f"unknown split option(s) {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}"
            )
        for key in ("fractions", "train_releases", "val_releases", "test_releases"):
            if key in values and values[key] is not None:
                values[key] = tuple(values[key])
        if values.get("method", "subject") not in ("subject", "release"):
            raise ValueError(f"split.method must be 'subject' or 'release', got {values['method']!r}")
        return cls(**values)


def _split_counts(n: int, fractions: Sequence[float]) -> tuple[int, int, int]:
    total = float(sum(fractions))
    if total <= 0 or any(f < 0 for f in fractions):
        raise ValueError(f"split fractions must be non-negative and not all zero, got {list(fractions)}")
    n_val = int(round(n * fractions[1] / total))
    n_test = int(round(n * fractions[2] / total))
    # Small datasets: keep at least one subject in every requested split while train keeps one too.
    if fractions[1] > 0 and n_val == 0 and n >= 3:
        n_val = 1
    if fractions[2] > 0 and n_test == 0 and n >= 3:
        n_test = 1
    return n - n_val - n_test, n_val, n_test


def assign_splits(subjects: pd.DataFrame, cfg: SplitConfig) -> pd.DataFrame:
    """Return ``subjects`` (columns dataset, subject[, release]) with a ``split`` column."""
    table = subjects[[c for c in ("dataset", "subject", "release") if c in subjects]].drop_duplicates(
        ["dataset", "subject"]
    )
    table = table.sort_values(["dataset", "subject"], ignore_index=True)
    if cfg.method == "release":
        lookup = {
            r: s
            for s, rel in zip(SPLITS, (cfg.train_releases, cfg.val_releases, cfg.test_releases), strict=False)
            for r in rel
        }
        if "release" not in table:
            raise ValueError("split.method=release needs a 'release' column in the subject table")
        table["split"] = table["release"].astype(str).map(lookup)
        return table.dropna(subset=["split"]).reset_index(drop=True)
    rng = np.random.default_rng(cfg.seed)
    labels = np.empty(len(table), dtype=object)
    # one generator, datasets in sorted order: a cache of one dataset draws what it always drew
    for _, rows in sorted(table.groupby("dataset").indices.items()):
        order = rows[rng.permutation(len(rows))]
        n_train, n_val, _ = _split_counts(len(rows), cfg.fractions)
        labels[order[:n_train]] = "train"
        labels[order[n_train : n_train + n_val]] = "val"
        labels[order[n_train + n_val :]] = "test"
    table["split"] = labels
    return table


def attach_splits(windows: pd.DataFrame, splits: pd.DataFrame) -> pd.DataFrame:
    """Add the ``split`` of each window's subject; windows whose subject has no split are dropped."""
    merged = windows.drop(columns=["split"], errors="ignore").merge(
        splits[["dataset", "subject", "split"]], on=["dataset", "subject"], how="inner"
    )
    return merged


def labelled_subjects(
    windows: pd.DataFrame, target: str, count: int | None, seed: int, classes: bool
) -> list[str]:
    """The training subjects whose labels fine-tuning may read when only ``count`` of them are labelled
    (``phases.finetune.labelled_subjects``; None: every subject of ``windows``, which hold a known ``target``).

    The subjects are put in one order drawn from ``seed`` and the first ``count`` are taken, so a smaller count's
    subjects are among a larger one's (nested). Where ``classes`` and each subject has one class, the order
    alternates between the classes (each class's subjects in the drawn order), so any prefix is class-balanced
    up to one subject; otherwise (a label per recording, a regression target) the drawn order is used as is.
    """
    subjects = sorted(windows["subject"].astype(str).unique())
    if count is None:
        return subjects
    if count < 1 or count > len(subjects):
        raise ValueError(
            f"phases.finetune.labelled_subjects={count}: the train split has {len(subjects)} subject(s) with a "
            f"value of {target!r}; choose 1..{len(subjects)} or null (all)"
        )
    order = [subjects[i] for i in np.random.default_rng(seed).permutation(len(subjects))]
    per_subject = windows.assign(subject=windows["subject"].astype(str)).groupby("subject")[target]
    if classes and (per_subject.nunique() == 1).all():
        label = per_subject.first()
        queues = {c: [s for s in order if label[s] == c] for c in sorted(label.unique())}
        # the class that opens the alternation is drawn too, so that an odd count does not favour one class
        starts = list(queues)
        first = int(np.random.default_rng([seed, 1]).integers(len(starts)))
        rotation = starts[first:] + starts[:first]
        order = []
        while any(queues.values()):
            order.extend(queues[c].pop(0) for c in rotation if queues[c])
    return order[:count]
