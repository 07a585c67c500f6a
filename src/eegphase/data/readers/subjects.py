"""Subject tables: HBN ``participants.tsv`` and a user's CSV/TSV, both shaped to ``SUBJECT_COLUMNS``.

Problems that lose information silently (a missing optional column) become NaN plus a note in
``table.attrs['notes']``; problems that would make targets wrong (no id column, text in a numeric
column, duplicated ids, an unknown sex code) raise ``SubjectTableError`` naming the file and column.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from eegphase.data.readers.events import NA_VALUES
from eegphase.data.recording import SUBJECT_COLUMNS, SubjectTableError

log = logging.getLogger(__name__)

# The start kit leaves these HBN subjects out (see docs/hbn-eeg.md).
HBN_EXCLUDED_SUBJECTS = (
    "NDARWV769JM7",
    "NDARME789TD2",
    "NDARUA442ZVF",
    "NDARJP304NK1",
    "NDARTY128YLU",
    "NDARDW550GU6",
    "NDARLD243KRE",
    "NDARUJ292JXV",
    "NDARBA381JGH",
)
NUMERIC_SUBJECT_COLUMNS = ("age", "p_factor", "attention", "internalizing", "externalizing")
_SEX_CODES = {"m": "M", "male": "M", "f": "F", "female": "F"}


def strip_subject_prefix(subject: str) -> str:
    """'sub-NDARAB793GL3' -> 'NDARAB793GL3' (BIDS ids carry the prefix in tables, not in entities)."""
    return subject[4:] if subject.startswith("sub-") else subject


def read_table(path: Path) -> pd.DataFrame:
    """Read a CSV or TSV (chosen by suffix, else sniffed) with every cell as text and ``n/a`` as NaN."""
    path = Path(path)
    if not path.is_file():
        raise SubjectTableError(f"{path}: subject table not found")
    sep = {".tsv": "\t", ".csv": ","}.get(path.suffix.lower())
    try:
        return pd.read_csv(
            path,
            sep=sep,
            engine="python" if sep is None else "c",
            dtype=str,
            na_values=NA_VALUES,
            keep_default_na=False,
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise SubjectTableError(f"{path}: unreadable subject table ({type(err).__name__}: {err})") from err


def _coerce_numeric(table: pd.DataFrame, column: str, path: Path) -> None:
    numeric = pd.to_numeric(table[column], errors="coerce")
    bad = table[column].notna() & numeric.isna()
    if bad.any():
        row = bad.idxmax()
        raise SubjectTableError(
            f"{path}: column {column!r} must be numeric but holds {table.at[row, column]!r} "
            f"(subject {table.at[row, 'subject']!r})"
        )
    table[column] = numeric.astype(float)


def _normalise_sex(table: pd.DataFrame, path: Path) -> None:
    def code(value: object) -> object:
        if pd.isna(value):
            return np.nan
        normalised = _SEX_CODES.get(str(value).strip().lower())
        if normalised is None:
            raise SubjectTableError(f"{path}: column 'sex' holds {value!r}; expected M/F (or male/female)")
        return normalised

    table["sex"] = table["sex"].map(code).astype(object)


def shape_subject_table(
    table: pd.DataFrame, path: Path, id_column: str, numeric_extra: Iterable[str] = ()
) -> pd.DataFrame:
    """Rename the id column to 'subject', add missing ``SUBJECT_COLUMNS`` as NaN, coerce types.

    ``numeric_extra`` lists additional columns that must be numeric (an error otherwise); other extra
    columns become numbers when every value parses as one. Standard columns
    come first in ``SUBJECT_COLUMNS`` order, extra columns after them in file order.
    """
    if id_column not in table.columns:
        raise SubjectTableError(
            f"{path}: required id column {id_column!r} is missing (columns: {list(table.columns)})"
        )
    table = table.rename(columns={id_column: "subject"}).copy()
    if table["subject"].isna().any():
        raise SubjectTableError(f"{path}: {int(table['subject'].isna().sum())} rows have no {id_column!r}")
    table["subject"] = table["subject"].str.strip().map(strip_subject_prefix)
    duplicated = table["subject"][table["subject"].duplicated()]
    if not duplicated.empty:
        raise SubjectTableError(f"{path}: duplicated subject ids {sorted(set(duplicated))[:5]}")
    notes: list[str] = []
    missing = [c for c in SUBJECT_COLUMNS if c not in table.columns]
    for column in missing:
        table[column] = np.nan
    if missing:
        notes.append(f"{path.name}: columns {missing} missing, filled with NaN")
    for column in (*NUMERIC_SUBJECT_COLUMNS, *numeric_extra):
        _coerce_numeric(table, column, path)
    for column in [c for c in table.columns if c not in SUBJECT_COLUMNS]:
        # extra columns that are numbers throughout (ehq_total, a user's score) become floats; text stays text
        numeric = pd.to_numeric(table[column], errors="coerce")
        if table[column].notna().any() and numeric.notna().sum() == table[column].notna().sum():
            table[column] = numeric.astype(float)
    _normalise_sex(table, path)
    table["release"] = table["release"].astype(object)
    ordered = list(SUBJECT_COLUMNS) + [c for c in table.columns if c not in SUBJECT_COLUMNS]
    table = table[ordered].reset_index(drop=True)
    table.attrs["notes"] = notes
    for note in notes:
        log.warning(note)
    return table


def read_participants_tsv(
    path: Path, exclude_subjects: Iterable[str] = HBN_EXCLUDED_SUBJECTS
) -> pd.DataFrame:
    """HBN participants.tsv as a subject table; ``release_number`` becomes ``release``.

    Task-availability columns (RestingState, contrastChangeDetection_1, ...) and the other extras
    (ehq_total, commercial_use, ...) are kept as they are.
    """
    table = read_table(path)
    if "release_number" in table.columns and "release" not in table.columns:
        table = table.rename(columns={"release_number": "release"})
    table = shape_subject_table(table, Path(path), id_column="participant_id")
    excluded = set(exclude_subjects)
    if excluded:
        dropped = table["subject"].isin(excluded)
        if dropped.any():
            table.attrs["notes"].append(f"excluded {int(dropped.sum())} subjects listed by the start kit")
        notes = table.attrs["notes"]
        table = table.loc[~dropped].reset_index(drop=True)
        table.attrs["notes"] = notes
    return table


def subjects_without_table(subjects: Iterable[str]) -> pd.DataFrame:
    """A subject table with ``SUBJECT_COLUMNS`` all NaN, for sources without any table."""
    ids = sorted(set(subjects))
    table = pd.DataFrame({column: [np.nan] * len(ids) for column in SUBJECT_COLUMNS}, dtype=object)
    table["subject"] = ids
    for column in NUMERIC_SUBJECT_COLUMNS:
        table[column] = table[column].astype(float)
    table.attrs["notes"] = []
    return table
