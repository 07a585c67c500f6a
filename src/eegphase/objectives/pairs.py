"""Positive pairs for the contrastive phase, and batches in which in-batch negatives are true negatives.

Every pair mode is the same sampler over three per-window codes:

* ``pool``: a window's positive is another window of its pool (optionally a ``fallback`` pool when the pool
  holds nobody else);
* ``identity``: what the positive must differ in (the subject, or the window itself);
* ``unit``: what negatives are defined by. In a batch, anchors are on distinct units and no positive is on
  another pair's anchor unit, so the rows InfoNCE treats as negatives never show the anchor's unit.

The pair modes (``contrastive.pair_mode``):

=================  =================  ==========================  ==================  ==============
mode               windows (mode)     pool (fallback)             differs in          unit
=================  =================  ==========================  ==================  ==============
``same_time``      ``movies``         movie+time bin (movie)      subject             movie+time bin
``any_time``       ``movies``         movie                       subject             movie+time bin
``same_label``     ``pretrain``       recording label (or task)   subject             recording
``same_recording`` ``pretrain``       recording                   window              recording
=================  =================  ==========================  ==================  ==============

Movie modes: a window is labelled (movie, time_bin, subject). Its positive is a window of the same movie and
time bin from a different subject; when nobody else watched that moment, the same movie at any time from a
different subject (``any_time`` uses that rule for every anchor). Negatives are defined by the moment, also in
``any_time`` mode: other times of the same movie stay negatives (with four movies, "other movie only"
negatives would cap a batch at four pairs).

Modes without movies read every recording's fixed windows (the ``pretrain`` mode). ``same_label`` (the
task-specific contrastive): the positive is a window of another subject whose recording carries the same
label (``data.label_pattern``; without labels, the same ``task``). Negatives are other recordings, which may
share the label: with two labels (eyes closed/open), label-distinct batches would hold two pairs.
``same_recording`` (the resting-state contrastive): the positive is another window of the same recording and
negatives are windows of other recordings. A window without a positive is never an anchor.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from torch.utils.data import Dataset, Sampler

MOVIE_PAIR_MODES = ("same_time", "any_time")
PAIR_MODES = (*MOVIE_PAIR_MODES, "same_label", "same_recording")
LABEL_COLUMNS = ("label", "task")  # same_label groups by the first that holds values
_REJECTION_TRIES = 32


def pair_source_mode(pair_mode: str) -> str:
    """The window mode (table of the cache) a pair mode reads."""
    if pair_mode not in PAIR_MODES:
        raise ValueError(f"unknown pair mode {pair_mode!r}; expected one of {PAIR_MODES}")
    return "movies" if pair_mode in MOVIE_PAIR_MODES else "pretrain"


class _Pool:
    """Windows sharing a pool (a moment, a movie, a label, a recording), with their identities, to draw a
    partner of another identity."""

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


def _codes(values: np.ndarray) -> np.ndarray:
    """Integer codes of a column (-1 where missing)."""
    return pd.factorize(pd.Series(values), sort=True)[0].astype(np.int64)


class PairSampler(Sampler[list[tuple[int, int]]]):
    """Yields batches of (anchor, positive) window indices; use as a DataLoader ``batch_sampler`` with
    :class:`PairDataset`.

    ``unit``, ``pool`` and ``identity`` are integer codes per window (row positions are the indices yielded;
    a pool code of -1 means no pool). Each epoch every window that has a positive is an anchor once, in a new
    order seeded by (seed, epoch) (call :meth:`set_epoch`).
    """

    def __init__(
        self,
        unit: np.ndarray,
        pool: np.ndarray,
        identity: np.ndarray,
        batch_size: int,
        seed: int = 0,
        drop_last: bool = True,
        fallback: np.ndarray | None = None,
        unit_name: str = "units",
        no_positive: str = "no window has a positive",
    ):
        if batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 for in-batch negatives, got {batch_size}")
        self.batch_size, self.seed, self.drop_last = batch_size, seed, drop_last
        self.epoch = 0
        self.moment = np.asarray(unit, dtype=np.int64)
        self.identity = np.asarray(identity, dtype=np.int64)
        self._pool_code = np.asarray(pool, dtype=np.int64)
        self._pools, pool_ok = self._pools_of(self._pool_code)
        if fallback is None:
            self._fallback_code, self.uses_fallback = None, np.zeros(len(self.moment), dtype=bool)
            has_positive = pool_ok
        else:
            self._fallback_code = np.asarray(fallback, dtype=np.int64)
            self._fallbacks, fallback_ok = self._pools_of(self._fallback_code)
            self.uses_fallback = ~pool_ok & fallback_ok
            has_positive = pool_ok | fallback_ok
        self.anchors = np.flatnonzero(has_positive)
        if len(self.anchors) == 0:
            raise ValueError(no_positive)
        n_units = len(np.unique(self.moment[self.anchors]))
        if n_units < batch_size:
            raise ValueError(
                f"only {n_units} distinct {unit_name} have positives, fewer than batch_size "
                f"{batch_size}: a batch could not hold distinct {unit_name}"
            )
        self._plan_cache: tuple[int, list[list[tuple[int, int]]]] | None = None

    def _pools_of(self, codes: np.ndarray) -> tuple[dict[int, _Pool], np.ndarray]:
        """The pools of ``codes`` (code -1: none), and per window whether its pool has another identity."""
        valid = np.flatnonzero(codes >= 0)
        order = valid[np.argsort(codes[valid], kind="stable")]
        bounds = np.flatnonzero(np.diff(codes[order])) + 1
        pools = {int(codes[c[0]]): _Pool(c, self.identity[c]) for c in np.split(order, bounds) if len(c)}
        ok = np.zeros(len(codes), dtype=bool)
        for pool in pools.values():
            ok[pool.members] = pool.n_subjects >= 2
        return pools, ok

    @property
    def fallback_fraction(self) -> float:
        """Share of anchors whose positive comes from the fallback pool."""
        return float(self.uses_fallback[self.anchors].mean())

    def pair_shares(self, batches: Iterable[Sequence[tuple[int, int]]] | None = None) -> dict[str, float]:
        """Of the pairs in ``batches`` (default: the current epoch's plan), the share whose positive is on its
        anchor's unit (``same_unit``; in the movie modes a true same-moment pair) and the share whose positive
        came from the fallback pool (``fallback``; in ``any_time`` mode every pair)."""
        batches = self._plan() if batches is None else batches
        pairs = np.array([pair for batch in batches for pair in batch], dtype=np.int64).reshape(-1, 2)
        if not len(pairs):
            return {"same_unit": float("nan"), "fallback": float("nan")}
        anchors, positives = pairs[:, 0], pairs[:, 1]
        return {
            "same_unit": float((self.moment[anchors] == self.moment[positives]).mean()),
            "fallback": float(self.uses_fallback[anchors].mean()),
        }

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def positive_for(self, anchor: int, rng: np.random.Generator) -> int:
        """A positive for ``anchor``: another identity of its pool (of its fallback pool if it must)."""
        if self._fallback_code is not None and self.uses_fallback[anchor]:
            pool = self._fallbacks[int(self._fallback_code[anchor])]
        else:
            pool = self._pools[int(self._pool_code[anchor])]
        return pool.draw_other_subject(int(self.identity[anchor]), rng)

    def _anchor_order(self, rng: np.random.Generator) -> np.ndarray:
        """Anchors in rounds of one window per unit, so that neighbours rarely share a unit."""
        shuffled = rng.permutation(self.anchors)
        round_index = pd.Series(self.moment[shuffled]).groupby(self.moment[shuffled]).cumcount().to_numpy()
        return shuffled[np.argsort(round_index, kind="stable")]

    def _try_pair(
        self, anchor: int, anchor_moments: set[int], positive_moments: set[int], rng: np.random.Generator
    ) -> int | None:
        """A positive for ``anchor`` that keeps the batch's negatives true, or None.

        Rows are only ever compared anchor against positive, so a new pair must not put its anchor on a
        unit already used by an anchor or a positive, nor its positive on another pair's anchor unit.
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
            # Bounded scan: near the end of an epoch few units remain and a full batch may not exist.
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
                f"no full batch of {self.batch_size} pairs with distinct units could be formed; "
                "lower batch_size or set drop_last=False"
            )
        self._plan_cache = (self.epoch, batches)
        return batches

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        yield from self._plan()

    def __len__(self) -> int:
        return len(self._plan())


def _table(windows: pd.DataFrame | Mapping[str, Sequence[Any] | np.ndarray], columns: Sequence[str]):
    missing = [c for c in columns if c not in windows]
    if missing:
        raise KeyError(f"the windows table lacks the column(s) {missing}; it has {list(windows.keys())}")
    return pd.DataFrame({c: np.asarray(windows[c]) for c in columns})


class MoviePairSampler(PairSampler):
    """Pairs of movie windows (``mode`` ``same_time`` or ``any_time``; see the module docstring).

    ``windows`` is a DataFrame (or a mapping of equal-length arrays) with the columns ``movie``, ``time_bin``
    and ``subject``.
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
        if mode not in MOVIE_PAIR_MODES:
            raise ValueError(f"unknown pair mode {mode!r}; expected one of {MOVIE_PAIR_MODES}")
        if batch_size < 2:
            raise ValueError(f"batch_size must be >= 2 for in-batch negatives, got {batch_size}")
        movie_col, time_col, subject_col = columns
        table = _table(windows, columns)
        if table.isna().any().any():
            bad = table.columns[table.isna().any()].tolist()
            raise ValueError(f"the windows table has missing values in column(s) {bad}")
        self.mode = mode
        moment = table.groupby([movie_col, time_col], sort=True).ngroup().to_numpy()
        self.movie = pd.factorize(table[movie_col])[0]
        self.subject = pd.factorize(table[subject_col])[0]
        same_time = mode == "same_time"
        super().__init__(
            unit=moment,
            pool=moment if same_time else self.movie,
            identity=self.subject,
            batch_size=batch_size,
            seed=seed,
            drop_last=drop_last,
            fallback=self.movie if same_time else None,
            unit_name="(movie, time_bin) moments",
            no_positive="no window has a positive: every movie was watched by a single subject",
        )
        if not same_time:  # every positive comes from another time of the movie
            self.uses_fallback = np.zeros(len(moment), dtype=bool)
            self.uses_fallback[self.anchors] = True


def label_column(windows: pd.DataFrame | Mapping[str, Any]) -> str:
    """The column ``same_label`` groups by: the recording ``label`` if it holds values, else ``task``."""
    for column in LABEL_COLUMNS:
        if column in windows and pd.Series(np.asarray(windows[column])).replace("", np.nan).notna().any():
            return column
    raise KeyError(
        f"pair mode same_label needs a recording label: the windows table has no values in {list(LABEL_COLUMNS)} "
        "(set data.label_pattern, or use contrastive=same_recording)"
    )


def pair_sampler(
    windows: pd.DataFrame | Mapping[str, Sequence[Any] | np.ndarray],
    batch_size: int,
    mode: str,
    seed: int = 0,
    drop_last: bool = True,
) -> PairSampler:
    """The sampler of a pair mode over a windows table (``movies`` windows for the movie modes, ``pretrain``
    windows, which carry ``key``, ``subject`` and ``label``/``task``, for the others)."""
    if mode in MOVIE_PAIR_MODES:
        return MoviePairSampler(windows, batch_size, mode=mode, seed=seed, drop_last=drop_last)
    if mode not in PAIR_MODES:
        raise ValueError(f"unknown pair mode {mode!r}; expected one of {PAIR_MODES}")
    table = _table(windows, ("key", "subject"))
    recording = _codes(table["key"].to_numpy())
    if mode == "same_recording":
        return PairSampler(
            unit=recording,
            pool=recording,
            identity=np.arange(len(table)),
            batch_size=batch_size,
            seed=seed,
            drop_last=drop_last,
            unit_name="recordings",
            no_positive="no window has a positive: every recording holds a single window",
        )
    column = label_column(windows)
    labels = pd.Series(np.asarray(windows[column])).replace("", np.nan)
    values = labels.dropna().unique()
    if len(values) < 2:
        raise ValueError(
            f"pair mode same_label: every window has the same {column!r} ({values[0]!r}), so a positive would "
            "be any window of another subject; set data.label_pattern to a label that varies, or use "
            "contrastive=same_recording"
        )
    return PairSampler(
        unit=recording,
        pool=_codes(labels.to_numpy()),
        identity=_codes(table["subject"].astype(str).to_numpy()),
        batch_size=batch_size,
        seed=seed,
        drop_last=drop_last,
        unit_name="recordings",
        no_positive=f"no window has a positive: no {column!r} value is shared by two subjects",
    )


class PairDataset(Dataset):
    """Wraps a window dataset so that ``dataset[(anchor, positive)]`` returns both items."""

    def __init__(self, windows: Dataset):
        self.windows = windows

    def __len__(self) -> int:
        return len(self.windows)  # type: ignore[arg-type]

    def __getitem__(self, pair: tuple[int, int]) -> tuple[Any, Any]:
        anchor, positive = pair
        return self.windows[anchor], self.windows[positive]
