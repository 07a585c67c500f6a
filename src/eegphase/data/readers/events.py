"""Events tables: BIDS ``_events.tsv`` files and MNE annotations, cleaned to the same shape.

Every events table leaving a reader has ``EVENT_COLUMNS`` (onset in seconds from the first sample), is
sorted by onset, and holds no event outside the data, so window builders never index past the end.
"""

from __future__ import annotations

from pathlib import Path

import mne
import numpy as np
import pandas as pd

from eegphase.data.recording import EVENT_COLUMNS, RecordingError

NA_VALUES = ["n/a", "N/A", "NA", "nan", "NaN", ""]


def empty_events() -> pd.DataFrame:
    """An events table with the required columns and no rows."""
    return pd.DataFrame(
        {
            "onset": pd.Series(dtype=float),
            "duration": pd.Series(dtype=float),
            "value": pd.Series(dtype=object),
        }
    )


def read_events_tsv(path: Path) -> pd.DataFrame:
    """Read a BIDS events.tsv, keeping task-specific columns; ``n/a`` becomes NaN.

    ``value`` falls back to BIDS ``trial_type`` when absent; a missing ``duration`` becomes NaN. A file
    without an ``onset`` column raises ``RecordingError`` naming it.
    """
    try:
        events = pd.read_csv(path, sep="\t", na_values=NA_VALUES, keep_default_na=False, dtype={"value": str})
    except pd.errors.EmptyDataError:
        return empty_events()
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as err:
        raise RecordingError(path, f"unreadable events file ({type(err).__name__}: {err})") from err
    if "onset" not in events.columns:
        raise RecordingError(path, f"events file has no 'onset' column (columns: {list(events.columns)})")
    if "value" not in events.columns:
        events["value"] = events["trial_type"] if "trial_type" in events.columns else np.nan
    if "duration" not in events.columns:
        events["duration"] = np.nan
    for column in ("onset", "duration"):
        numeric = pd.to_numeric(events[column], errors="coerce")
        bad = events[column].notna() & numeric.isna()
        if bad.any():
            example = events.loc[bad, column].iloc[0]
            raise RecordingError(path, f"events column {column!r} holds non-numeric value {example!r}")
        events[column] = numeric.astype(float)
    return events


def events_from_annotations(raw: mne.io.BaseRaw) -> pd.DataFrame:
    """The raw's annotations (EDF+ annotations, EEGLAB events) as an events table."""
    annotations = raw.annotations
    if len(annotations) == 0:
        return empty_events()
    # Annotation onsets count from the measurement start; events count from the first sample.
    return pd.DataFrame(
        {
            "onset": np.asarray(annotations.onset, dtype=float) - raw.first_time,
            "duration": np.asarray(annotations.duration, dtype=float),
            "value": np.asarray(annotations.description, dtype=object),
        }
    )


def clean_events(events: pd.DataFrame, duration_s: float) -> tuple[pd.DataFrame, list[str]]:
    """Sort by onset and drop events without an onset or outside [0, duration_s); return (events, notes)."""
    notes: list[str] = []
    onset = events["onset"]
    missing = onset.isna()
    before = onset < 0
    after = onset >= duration_s
    if missing.any():
        notes.append(f"dropped {int(missing.sum())} events without an onset")
    if before.any():
        notes.append(f"dropped {int(before.sum())} events before the start of the data")
    if after.any():
        notes.append(f"dropped {int(after.sum())} events after the end of the data ({duration_s:.3f} s)")
    kept = events.loc[~(missing | before | after)]
    kept = kept.sort_values("onset", kind="mergesort").reset_index(drop=True)
    ordered = list(EVENT_COLUMNS) + [c for c in kept.columns if c not in EVENT_COLUMNS]
    return kept[ordered], notes
