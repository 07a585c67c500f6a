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
# Headers a user's table may use for a known column (matched case-insensitively, like the known names).
COLUMN_ALIASES = {"gender": "sex"}


def canonical_column(name: str) -> str:
    """The subject-table column a header stands for: a known name or alias in any case (``Age`` -> age,
    ``Gender``/``Sex`` -> sex), else the header unchanged."""
    lowered = str(name).strip().lower()
    lowered = COLUMN_ALIASES.get(lowered, lowered)
    return lowered if lowered in SUBJECT_COLUMNS else str(name)


def find_column(name: str, columns: Iterable[str]) -> str | None:
    """The column of ``columns`` that ``name`` means: exact, then through ``canonical_column``, then ignoring
    case; None when there is none."""
    columns = [str(c) for c in columns]
    for candidate in (str(name), canonical_column(name)):
        if candidate in columns:
            return candidate
    folded = [c for c in columns if c.lower() == str(name).lower()]
    return folded[0] if len(folded) == 1 else None


def _map_known_headers(table: pd.DataFrame, id_column: str) -> tuple[pd.DataFrame, str, list[str]]:
    """Rename headers that mean a known column (any case, aliases) to its name, and find the id column
    ignoring case; returns the table, the id column's header and what was renamed."""
    renames: dict[str, str] = {}
    taken = {c for c in table.columns if c in SUBJECT_COLUMNS}
    for column in table.columns:
        known = canonical_column(column)
        if known != column and known not in taken and known != "subject":
            renames[column] = known
            taken.add(known)
    if id_column not in table.columns:
        matches = [c for c in table.columns if str(c).strip().lower() == id_column.strip().lower()]
        if len(matches) == 1:
            id_column = matches[0]
    notes = [f"column {old!r} read as {new!r}" for old, new in renames.items()]
    return table.rename(columns=renames), id_column, notes


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
    come first in ``SUBJECT_COLUMNS`` order, extra columns after them in file order. Headers are matched to
    the known names ignoring case (``Age`` -> age, ``Gender``/``Sex`` -> sex), the id column too.
    """
    headers = list(table.columns)
    table, id_column, renamed = _map_known_headers(table, id_column)
    if id_column not in table.columns:
        raise SubjectTableError(
            f"{path}: required id column {id_column!r} is missing (columns: {headers}); "
            "name it with data.id_column"
        )
    if id_column != "subject" and "subject" in table.columns:
        table = table.drop(columns=["subject"])  # the id column's values are the subject ids
    table = table.rename(columns={id_column: "subject"}).copy()
    if table["subject"].isna().any():
        raise SubjectTableError(f"{path}: {int(table['subject'].isna().sum())} rows have no {id_column!r}")
    table["subject"] = table["subject"].str.strip().map(strip_subject_prefix)
    duplicated = table["subject"][table["subject"].duplicated()]
    if not duplicated.empty:
        raise SubjectTableError(f"{path}: duplicated subject ids {sorted(set(duplicated))[:5]}")
    notes: list[str] = []
    if renamed:
        log.info("%s: %s", path.name, "; ".join(renamed))
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
