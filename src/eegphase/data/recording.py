"""The contract between readers and the rest of the data layer.

A reader finds recordings (``RecordingRef``), reads the subject table, and loads one recording into a
``LoadedRecording`` (an MNE Raw plus its events). Preprocessing, the cache and the windowed datasets only
ever see these types, so a new data source is one new reader.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import mne
import pandas as pd

# Columns every subject table has (NaN where unknown); readers may add more (user targets).
SUBJECT_COLUMNS = (
    "subject",
    "release",
    "age",
    "sex",
    "p_factor",
    "attention",
    "internalizing",
    "externalizing",
)
# Columns every events table has; readers keep task-specific extras (feedback, stimulus_cond, ...).
EVENT_COLUMNS = ("onset", "duration", "value")


class RecordingError(Exception):
    """A recording that cannot be used; the message names the file and what is wrong with it."""

    def __init__(self, path: Path | str, reason: str):
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class SubjectTableError(Exception):
    """The subject table (e.g. participants.tsv) is unusable; the message names the file and column."""


@dataclass(frozen=True)
class RecordingRef:
    """One recording file found by a reader, before it is loaded.

    ``task`` is the BIDS task name for HBN ('RestingState', 'contrastChangeDetection', 'DespicableMe', ...),
    '' when the source has none (TUH). ``run`` is None when the file has no run number.
    """

    path: Path
    dataset: str
    subject: str
    task: str = ""
    run: int | None = None
    release: str | None = None
    session: str | None = None
    label: str | None = None
    events_path: Path | None = None
    # the BIDS channels.tsv, only when it marks channels bad (status=bad): loading puts them in info['bads'],
    # and the cache key includes the file, so recordings without bad channels keep their keys
    channels_path: Path | None = None

    @property
    def name(self) -> str:
        """Short human-readable id used in reports and logs."""
        run = f"_run-{self.run}" if self.run is not None else ""
        task = f"_task-{self.task}" if self.task else ""
        return f"{self.dataset}:{self.subject}{task}{run}"


@dataclass
class LoadedRecording:
    """A recording ready for preprocessing.

    ``raw`` holds EEG channels only, with names normalised by the reader (HBN: E1..E128, Cz; TUH and other
    10-20 data: standard 10-20 names such as 'Fp1', 'T7'), in volts, with a montage set when positions are
    known. ``events`` has at least ``EVENT_COLUMNS`` (onset in seconds from the first sample), sorted by
    onset, with events outside the data already dropped. ``notes`` lists non-fatal problems found while
    reading (e.g. "dropped 2 events after the end of the data"). ``padded_channels`` are all-zero channels
    the reader added so that the recording has its dataset's channel set; the cache masks them out.
    """

    ref: RecordingRef
    raw: mne.io.BaseRaw
    events: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    padded_channels: list[str] = field(default_factory=list)


class Reader(Protocol):
    """What every data source implements (HBN BIDS, TUH EDF, a user's folder)."""

    dataset: str
    root: Path

    def discover(self) -> list[RecordingRef]:
        """All recordings under ``root``, sorted deterministically."""
        ...

    def read_subjects(self) -> pd.DataFrame:
        """One row per subject with ``SUBJECT_COLUMNS`` (NaN where unknown) plus any extra targets."""
        ...

    def load(self, ref: RecordingRef) -> LoadedRecording:
        """Load one recording; raise ``RecordingError`` naming the file when it cannot be used."""
        ...
