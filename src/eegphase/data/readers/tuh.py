"""TUH-style clinical EDF: ``**/<subject>_<session>_<token>.edf``, 19-23 channels like ``EEG FP1-REF``.

Channels are renamed to MNE's 10-05 spelling (old T3/T4/T5/T6 become T7/T8/P7/P8), every channel without
a 10-05 name (EKG, PHOTIC, IBI, ...) is dropped, and the reference (REF = common reference, LE = linked
ears) goes into the notes. Age and sex come from the EDF patient field when it has them.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from eegphase.data.readers.channels import reference_of, rename_to_1020, set_known_montage
from eegphase.data.readers.events import clean_events, events_from_annotations
from eegphase.data.readers.raw_files import duration_s, edf_patient_field, read_raw_lazy
from eegphase.data.readers.subjects import subjects_without_table
from eegphase.data.recording import LoadedRecording, RecordingError, RecordingRef

_TUH_NAME = re.compile(r"^(?P<subject>[A-Za-z0-9]+)_(?P<session>s\d+)(?:_t(?P<token>\d+))?$")
_AGE = re.compile(r"\bAge:\s*(?P<age>\d+(?:\.\d+)?)", re.IGNORECASE)
_SEX_TOKEN = {"M": "M", "F": "F", "MALE": "M", "FEMALE": "F"}


def parse_tuh_name(path: Path) -> tuple[str, str | None, int | None]:
    """(subject, session, token) from 'aaaaaaaa_s001_t000.edf'; other names give (stem, None, None)."""
    match = _TUH_NAME.match(path.stem)
    if match is None:
        return path.stem, None, None
    token = match.group("token")
    return match.group("subject"), match.group("session"), int(token) if token is not None else None


def traits_from_patient_field(field: str) -> tuple[float, object]:
    """(age, sex) from an EDF(+) patient field such as 'aaaaaaaa M 01-JAN-1960 aaaaaaaa Age:45'.

    EDF+ puts sex in the second space-separated subfield; TUH adds 'Age:NN'. Unknown parts are NaN.
    """
    age_match = _AGE.search(field)
    age = float(age_match.group("age")) if age_match else np.nan
    parts = field.split()
    sex = _SEX_TOKEN.get(parts[1].upper(), np.nan) if len(parts) > 1 else np.nan
    return age, sex


class TuhReader:
    """Reader for a folder tree of TUH-style EDF files (no subject table: traits come from headers)."""

    def __init__(self, root: Path | str, dataset: str = "tuh", extensions: tuple[str, ...] = (".edf",)):
        self.root = Path(root)
        self.dataset = dataset
        self.extensions = tuple(e.lower() for e in extensions)

    def _files(self) -> list[Path]:
        return sorted(p for p in self.root.rglob("*") if p.suffix.lower() in self.extensions and p.is_file())

    def discover(self) -> list[RecordingRef]:
        refs = []
        for path in self._files():
            subject, session, token = parse_tuh_name(path)
            refs.append(
                RecordingRef(path=path, dataset=self.dataset, subject=subject, session=session, run=token)
            )
        return refs

    def read_subjects(self) -> pd.DataFrame:
        """One row per subject; age and sex from the first of its files whose header has them."""
        refs = self.discover()
        table = subjects_without_table(ref.subject for ref in refs)
        notes: list[str] = []
        unreadable = Counter()
        row_of = {subject: row for row, subject in table["subject"].items()}
        for ref in refs:
            try:
                age, sex = traits_from_patient_field(edf_patient_field(ref.path))
            except OSError:
                unreadable[ref.subject] += 1
                continue
            row = row_of[ref.subject]
            if pd.isna(table.at[row, "age"]) and not pd.isna(age):
                table.at[row, "age"] = age
            if pd.isna(table.at[row, "sex"]) and not pd.isna(sex):
                table.at[row, "sex"] = sex
        if unreadable:
            notes.append(f"could not read the header of {sum(unreadable.values())} files")
        table.attrs["notes"] = notes
        return table

    def load(self, ref: RecordingRef) -> LoadedRecording:
        """Open lazily, keep the 10-05 electrodes under their MNE names, set the montage, read annotations."""
        raw = read_raw_lazy(ref.path)
        notes: list[str] = []
        references = sorted({r for r in map(reference_of, raw.ch_names) if r is not None})
        _, unmapped = rename_to_1020(raw)
        if unmapped:
            notes.append(f"dropped {len(unmapped)} channels without a 10-20 name: {unmapped}")
            keep = [name for name in raw.ch_names if name not in unmapped]
            if not keep:
                raise RecordingError(ref.path, f"no 10-20 EEG channels among {unmapped}")
            raw.pick(keep)
        raw.pick("eeg")
        if references:
            notes.append(f"reference: {'/'.join(references)}")
            raw.info["description"] = f"reference: {'/'.join(references)}"
        set_known_montage(raw)
        events, event_notes = clean_events(events_from_annotations(raw), duration_s(raw))
        return LoadedRecording(ref=ref, raw=raw, events=events, notes=notes + event_notes)
