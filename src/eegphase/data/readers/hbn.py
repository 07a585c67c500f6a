"""HBN-EEG in BIDS: ``sub-<ID>/eeg/sub-<ID>_task-<Task>[_run-<n>]_eeg.(set|bdf)`` plus participants.tsv.

Files and their entities are found with mne-bids; channels the recording's channels.tsv marks bad
(status=bad) go into ``raw.info['bads']``.

Reads the original releases (EEGLAB .set + .fdt, 500 Hz) and the challenge copies (BDF, 100 Hz) alike.
Recordings whose channel count is not the expected 129 (R7's 6-channel files) are refused on load with
a ``RecordingError`` so that the caller skips and reports them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from pathlib import Path

import pandas as pd

from eegphase.data.readers.bids import (
    BidsRecording,
    channels_tsv,
    find_eeg_recordings,
    mark_bad_channels,
    sidecar_to_read,
)
from eegphase.data.readers.channels import set_known_montage
from eegphase.data.readers.events import clean_events, empty_events, read_events_tsv
from eegphase.data.readers.raw_files import duration_s, pick_eeg_channels, read_raw_lazy
from eegphase.data.readers.subjects import (
    HBN_EXCLUDED_SUBJECTS,
    read_participants_tsv,
    subjects_without_table,
)
from eegphase.data.recording import LoadedRecording, RecordingError, RecordingRef

HBN_N_CHANNELS = 129
# OpenNeuro accession -> release, for roots that have neither release_number nor an 'R<n>' in their name.
_OPENNEURO_RELEASES = {
    "ds005505": "R1", "ds005506": "R2", "ds005507": "R3", "ds005508": "R4", "ds005509": "R5",
    "ds005510": "R6", "ds005511": "R7", "ds005512": "R8", "ds005514": "R9", "ds005515": "R10",
    "ds005516": "R11",
}  # fmt: skip
_RELEASE_IN_TEXT = re.compile(r"(?<![A-Za-z0-9])R(\d{1,2})(?![0-9])")


def infer_release(root: Path) -> str | None:
    """The release ('R3') from dataset_description.json or the folder name, None when neither tells."""
    texts = []
    description = root / "dataset_description.json"
    if description.is_file():
        try:
            meta = json.loads(description.read_text())
            texts += [str(meta.get(key, "")) for key in ("Name", "DatasetDOI", "ReferencesAndLinks")]
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass
    texts.append(root.resolve().name)
    for text in texts:
        for accession, release in _OPENNEURO_RELEASES.items():
            if accession in text:
                return release
        match = _RELEASE_IN_TEXT.search(text)
        if match:
            return f"R{int(match.group(1))}"
    return None


class HbnReader:
    """Reader for one HBN-EEG release folder (BIDS)."""

    def __init__(
        self,
        root: Path | str,
        expected_n_channels: int = HBN_N_CHANNELS,
        exclude_subjects: bool | Iterable[str] = True,
        tasks: Iterable[str] | None = None,
        extensions: Iterable[str] = (".set", ".bdf"),
        release: str | None = None,
        dataset: str = "hbn",
    ):
        self.root = Path(root)
        self.dataset = dataset
        self.expected_n_channels = expected_n_channels
        if exclude_subjects is True:
            self.excluded = frozenset(HBN_EXCLUDED_SUBJECTS)
        else:
            self.excluded = frozenset(exclude_subjects or ())
        self.tasks = None if tasks is None else set(tasks)
        self.extensions = tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)
        self._release = release
        self._subjects: pd.DataFrame | None = None

    @property
    def participants_path(self) -> Path:
        return self.root / "participants.tsv"

    def release(self) -> str | None:
        """The release for files whose subject has no ``release_number`` (option, else inferred)."""
        if self._release is None:
            self._release = infer_release(self.root)
        return self._release

    def read_subjects(self) -> pd.DataFrame:
        """participants.tsv shaped to ``SUBJECT_COLUMNS``; without one, the subjects found on disk."""
        if self._subjects is None:
            if self.participants_path.is_file():
                table = read_participants_tsv(self.participants_path, self.excluded)
            else:
                table = subjects_without_table(self._subject_ids_on_disk())
                table.attrs["notes"] = [f"{self.participants_path} not found: subject traits are NaN"]
                table = table.loc[~table["subject"].isin(self.excluded)].reset_index(drop=True)
            missing_release = table["release"].isna()
            if missing_release.any() and self.release() is not None:
                table.loc[missing_release, "release"] = self.release()
            self._subjects = table
        return self._subjects

    def _subject_ids_on_disk(self) -> list[str]:
        return sorted(p.name[4:] for p in self.root.glob("sub-*") if p.is_dir())

    def _eeg_files(self) -> list[BidsRecording]:
        found: dict[Path, BidsRecording] = {}
        for recording in find_eeg_recordings(self.root, self.extensions, self.tasks):
            suffix = recording.path.suffix.lower()
            stem = recording.path.with_suffix("")
            previous = found.get(stem)
            # the same recording in two formats: keep the one listed first in ``extensions``
            if previous is None or self.extensions.index(suffix) < self.extensions.index(
                previous.path.suffix.lower()
            ):
                found[stem] = recording
        return sorted(found.values(), key=lambda recording: recording.path)

    def discover(self) -> list[RecordingRef]:
        """Every EEG recording of a non-excluded subject (and a selected task), sorted by path."""
        releases = self.read_subjects().set_index("subject")["release"].to_dict()
        refs = []
        for recording in self._eeg_files():
            path, subject = recording.path, recording.subject
            if subject in self.excluded:
                continue
            release = releases.get(subject)
            release = self.release() if release is None or pd.isna(release) else str(release)
            events_path = path.with_name(path.name[: -len(f"_eeg{path.suffix}")] + "_events.tsv")
            refs.append(
                RecordingRef(
                    path=path,
                    dataset=self.dataset,
                    subject=subject,
                    task=recording.task,
                    run=recording.run,
                    release=release,
                    session=recording.session,
                    events_path=events_path if events_path.is_file() else None,
                    channels_path=sidecar_to_read(channels_tsv(recording)),
                )
            )
        return refs

    def load(self, ref: RecordingRef) -> LoadedRecording:
        """Open the recording lazily, check its channel count, set the HydroCel montage, read its events."""
        raw = read_raw_lazy(ref.path)
        notes: list[str] = []
        dropped = pick_eeg_channels(raw, ref.path, drop_non_eeg_labels=False)
        if dropped:
            notes.append(f"dropped {len(dropped)} non-EEG channels: {dropped}")
        n_channels = len(raw.ch_names)
        if self.expected_n_channels and n_channels != self.expected_n_channels:
            raise RecordingError(
                ref.path, f"has {n_channels} EEG channels, expected {self.expected_n_channels}"
            )
        if set_known_montage(raw) is None:
            notes.append("channel names are not the HydroCel-129 names: no montage set")
        notes += mark_bad_channels(raw, ref.channels_path)  # preprocessing interpolates them
        events, event_notes = self._read_events(ref, duration_s(raw))
        return LoadedRecording(ref=ref, raw=raw, events=events, notes=notes + event_notes)

    def _read_events(self, ref: RecordingRef, duration: float) -> tuple[pd.DataFrame, list[str]]:
        if ref.events_path is None or not Path(ref.events_path).is_file():
            return empty_events(), [f"no events.tsv beside {ref.path.name}: events are empty"]
        events = read_events_tsv(Path(ref.events_path))
        if events.empty:
            return empty_events(), [f"{Path(ref.events_path).name} holds no events"]
        return clean_events(events, duration)
