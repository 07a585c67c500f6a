"""Positive pairs for the movie-contrastive phase, and batches in which in-batch negatives are true negatives.

A window is labelled (movie, time_bin, subject). Its positive is a window of the same movie and the same
time bin from a different subject (``mode="same_time"``). When nobody else watched that moment, the
positive falls back to a window of the same movie at any time from a different subject; ``mode="any_time"``
uses that rule for every anchor. A window whose movie no other subject watched has no positive and is
never an anchor.

In a batch, anchors are on distinct (movie, time_bin) moments and no positive is on another pair's anchor
moment, so the rows InfoNCE treats as negatives never show the anchor's moment. Negatives are defined by
the moment, also in ``any_time`` mode: other times of the same movie stay negatives (with four movies,
"other movie only" negatives would cap a batch at four pairs).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from torch.utils.data import Dataset, Sampler

PAIR_MODES = ("same_time", "any_time")
_REJECTION_TRIES = 32


class _Pool:
    """Windows sharing a moment or a movie, with their subjects, to draw a partner of another subject."""

    __slots__ = ("members", "subjects", "n_subjects")

    def __init__(self, members: np.ndarray, subjects: np.ndarray):
        self.members = members
        self.subjects = subjects
        self.n_subjects = len(np.unique(subjects))

    def draw_other_subject(self, subject: int, rng: np.random.Generator) -> int:
        for _ in range(_REJECTION_TRIES):
            pick = int(rng.integers(len(self.members)))
            if self.subjects[pick] != subject:
                return int(self.members[pick])
        others = self.members[self.subjects != subject]
        return int(others[rng.integers(len(others))])


class MoviePairSampler(Sampler[list[tuple[int, int]]]):
    """Yields batches of (anchor, positive) window indices; use as a DataLoader ``batch_sampler`` with
    :class:`PairDataset`.

    ``windows`` is a DataFrame (or a mapping of equal-length arrays) with the columns ``movie``,
    ``time_bin`` and ``subject``; its row positions are the indices yielded. Each epoch every window
    that has a positive is an anchor once, in a new order (call :meth:`set_epoch`).
    """

    def __init__(
        self,
        windows: pd.DataFrame | Mapping[str, Sequence[Any] | np.ndarray],
        batch_size: int,
        mode: str = "same_time",
        seed: int = 0,
        drop_last: bool = True,
        columns: tuple[str, str, str] = ("movie", "time_bin", "subject"),
    ):
        if mode not in PAIR_MODES:
            raise ValueError(f"unknown pair mode {mode!r}; expected one of {PAIR_MODES}")
        if batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 for in-batch negatives, got {batch_size}")
        movie_col, time_col, subject_col = columns
        missing = [c for c in columns if c not in windows]
        if missing:
            raise KeyError(f"the windows table lacks the column(s) {missing}; it has {list(windows.keys())}")
        table = pd.DataFrame({c: np.asarray(windows[c]) for c in columns})
        if table.isna().any().any():
            bad = table.columns[table.isna().any()].tolist()
            raise ValueError(f"the windows table has missing values in column(s) {bad}")
        self.batch_size, self.mode, self.seed, self.drop_last = batch_size, mode, seed, drop_last
        self.epoch = 0
        self.moment = table.groupby([movie_col, time_col], sort=True).ngroup().to_numpy()
        self.movie = pd.factorize(table[movie_col])[0]
        self.subject = pd.factorize(table[subject_col])[0]
        self._moments = self._pools(self.moment)
        self._movies = self._pools(self.movie)

        moment_ok = np.array([self._moments[m].n_subjects >= 2 for m in self.moment], dtype=bool)
        movie_ok = np.array([self._movies[m].n_subjects >= 2 for m in self.movie], dtype=bool)
        if mode == "same_time":
            self.uses_fallback = ~moment_ok & movie_ok
            self.anchors = np.flatnonzero(moment_ok | movie_ok)
        else:
            self.uses_fallback = movie_ok.copy()
            self.anchors = np.flatnonzero(movie_ok)
        if len(self.anchors) == 0:
            raise ValueError("no window has a positive: every movie was watched by a single subject")
        n_moments = len(np.unique(self.moment[self.anchors]))
        if n_moments < batch_size:
            raise ValueError(
                f"only {n_moments} distinct (movie, time_bin) moments have positives, fewer than batch_size "
                f"{batch_size}: a batch could not hold distinct moments"
            )
        self._plan_cache: tuple[int, list[list[tuple[int, int]]]] | None = None

    def _pools(self, keys: np.ndarray) -> list[_Pool]:
        order = np.argsort(keys, kind="stable")
        bounds = np.flatnonzero(np.diff(keys[order])) + 1
        return [_Pool(chunk, self.subject[chunk]) for chunk in np.split(order, bounds)]

    @property
    def fallback_fraction(self) -> float:
        """Share of anchors whose positive comes from another time of the same movie."""
        return float(self.uses_fallback[self.anchors].mean())

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def positive_for(self, anchor: int, rng: np.random.Generator) -> int:
        """A positive for ``anchor``: another subject, same moment if possible, else same movie."""
        use_movie = self.uses_fallback[anchor] if self.mode == "same_time" else True
        pool = self._movies[self.movie[anchor]] if use_movie else self._moments[self.moment[anchor]]
        return pool.draw_other_subject(self.subject[anchor], rng)

    def _anchor_order(self, rng: np.random.Generator) -> np.ndarray:
        """Anchors in rounds of one window per moment, so that neighbours rarely share a moment."""
        shuffled = rng.permutation(self.anchors)
        round_index = pd.Series(self.moment[shuffled]).groupby(self.moment[shuffled]).cumcount().to_numpy()
        return shuffled[np.argsort(round_index, kind="stable")]

    def _try_pair(
        self, anchor: int, anchor_moments: set[int], positive_moments: set[int], rng: np.random.Generator
    ) -> int | None:
        """A positive for ``anchor`` that keeps the batch's negatives true, or None.

        Rows are only ever compared anchor against positive, so a new pair must not put its anchor on a
        moment already used by an anchor or a positive, nor its positive on another pair's anchor moment.
        """
        moment = int(self.moment[anchor])
        if moment in anchor_moments or moment in positive_moments:
            return None
        for _ in range(3):
            positive = self.positive_for(anchor, rng)
            positive_moment = int(self.moment[positive])
            if positive_moment == moment or positive_moment not in anchor_moments:
                return positive
        return None

    def _plan(self) -> list[list[tuple[int, int]]]:
        if self._plan_cache is not None and self._plan_cache[0] == self.epoch:
            return self._plan_cache[1]
        rng = np.random.default_rng([self.seed, self.epoch])
        pending = deque(int(i) for i in self._anchor_order(rng))
        batches: list[list[tuple[int, int]]] = []
        while pending:
            batch: list[tuple[int, int]] = []
            anchor_moments: set[int] = set()
            positive_moments: set[int] = set()
            deferred: list[int] = []
            # Bounded scan: near the end of an epoch few moments remain and a full batch may not exist.
            while pending and len(batch) < self.batch_size and len(deferred) < 4 * self.batch_size:
                anchor = pending.popleft()
                positive = self._try_pair(anchor, anchor_moments, positive_moments, rng)
                if positive is None:
                    deferred.append(anchor)
                    continue
                batch.append((anchor, positive))
                anchor_moments.add(int(self.moment[anchor]))
                positive_moments.add(int(self.moment[positive]))
            pending.extendleft(reversed(deferred))
            if len(batch) == self.batch_size or not self.drop_last:
                batches.append(batch)
        if not batches:
            raise ValueError(
                f"no full batch of {self.batch_size} pairs with distinct moments could be formed; "
                "lower batch_size or set drop_last=False"
            )
        self._plan_cache = (self.epoch, batches)
        return batches

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        yield from self._plan()

    def __len__(self) -> int:
        return len(self._plan())


class PairDataset(Dataset):
    """Wraps a window dataset so that ``dataset[(anchor, positive)]`` returns both items."""

    def __init__(self, windows: Dataset):
        self.windows = windows

    def __len__(self) -> int:
        return len(self.windows)  # type: ignore[arg-type]

    def __getitem__(self, pair: tuple[int, int]) -> tuple[Any, Any]:
        anchor, positive = pair
        return self.windows[anchor], self.windows[positive]
