"""A user's own folder: EDF/BDF/.set/BrainVision/FIF recordings (BIDS or not) plus a CSV/TSV subject table.

File -> subject is decided by ``subject_pattern`` (a regex with a named group ``subject``, searched in the
path relative to ``root``; the default takes a BIDS ``sub-<id>`` and falls back to the file stem).
Files the pattern does not match are skipped and listed in ``reader.skipped`` (with a logged warning);
``on_unmatched='error'`` makes them fatal instead. Finding no recording at all is always an error.
A BIDS ``<name>_eeg.<ext>`` file's ``<name>_channels.tsv`` that marks channels bad (status=bad) puts them,
under their normalised names, in ``raw.info['bads']``.

Channels: ``channels`` ('common', 'all' or a list of names) and ``missing_channels`` ('skip' or 'pad') decide
one channel set for the whole folder; ``select_channels`` settles it from the headers before the build loads
anything (see ``channel_set``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Sequence
from pathlib import Path

import mne
import numpy as np
import pandas as pd

from eegphase.data.readers.bids import mark_bad_channels, sibling_channels_tsv, sidecar_to_read
from eegphase.data.readers.channel_set import (
    ChannelSelection,
    check_missing_channels,
    parse_channels,
    recording_channels,
    select_channels,
)
from eegphase.data.readers.channels import normalise_1020_name, set_known_montage
from eegphase.data.readers.events import clean_events, events_from_annotations, read_events_tsv
from eegphase.data.readers.raw_files import SUPPORTED_SUFFIXES, duration_s, read_raw_lazy
from eegphase.data.readers.subjects import read_table, shape_subject_table, subjects_without_table
from eegphase.data.recording import LoadedRecording, RecordingError, RecordingRef

log = logging.getLogger(__name__)

_BIDS_SUBJECT = re.compile(r"(?:^|/|_)sub-(?P<subject>[A-Za-z0-9]+)")
_BIDS_TASK = re.compile(r"_task-(?P<task>[A-Za-z0-9]+)")
_BIDS_RUN = re.compile(r"_run-(?P<run>\d+)")
_BIDS_SESSION = re.compile(r"_ses-(?P<session>[A-Za-z0-9]+)")


def _compile(pattern: str | None, group: str, option: str) -> re.Pattern[str] | None:
    if pattern is None:
        return None
    try:
        compiled = re.compile(pattern)
    except re.error as err:
        raise ValueError(f"{option}={pattern!r} is not a valid regex: {err}") from err
    if group not in compiled.groupindex:
        raise ValueError(f"{option}={pattern!r} needs a named group (?P<{group}>...)")
    return compiled


def _search(pattern: re.Pattern[str], text: str, group: str) -> str | None:
    match = pattern.search(text)
    return match.group(group) if match else None


class FolderReader:
    """Reader for an arbitrary folder of recordings described by a few regexes and a subject table."""

    def __init__(
        self,
        root: Path | str,
        subjects_file: Path | str | None = None,
        id_column: str = "subject",
        subject_pattern: str | None = None,
        label_pattern: str | None = None,
        task_pattern: str | None = None,
        extensions: Iterable[str] = SUPPORTED_SUFFIXES,
        on_unmatched: str = "skip",
        dataset: str = "folder",
        channels: str | Sequence[str] = "common",
        missing_channels: str = "skip",
    ):
        if on_unmatched not in ("skip", "error"):
            raise ValueError(f"on_unmatched must be 'skip' or 'error', not {on_unmatched!r}")
        self.root = Path(root)
        self.dataset = dataset
        self.subjects_file = None if subjects_file is None else self._resolve(Path(subjects_file))
        self.id_column = id_column
        self.subject_pattern = _compile(subject_pattern, "subject", "subject_pattern")
        self.label_pattern = _compile(label_pattern, "label", "label_pattern")
        self.task_pattern = _compile(task_pattern, "task", "task_pattern")
        self.extensions = tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)
        self.on_unmatched = on_unmatched
        self.skipped: list[tuple[Path, str]] = []
        self.channels = parse_channels(channels)
        self.missing_channels = check_missing_channels(missing_channels)
        self.selection: ChannelSelection | None = None

    def _resolve(self, path: Path) -> Path:
        return path if path.is_absolute() or path.exists() else self.root / path

    def _subject_of(self, relative: str, path: Path) -> str | None:
        if self.subject_pattern is not None:
            return _search(self.subject_pattern, relative, "subject")
        return _search(_BIDS_SUBJECT, relative, "subject") or path.stem

    def _unmatched(self, path: Path, reason: str) -> None:
        if self.on_unmatched == "error":
            raise RecordingError(path, reason)
        self.skipped.append((path, reason))
        log.warning("skipping %s: %s", path, reason)

    def discover(self) -> list[RecordingRef]:
        """Recordings under ``root`` with a supported extension, sorted by path; see the module doc."""
        if not self.root.is_dir():
            raise FileNotFoundError(f"recording folder {self.root} does not exist")
        self.skipped = []
        refs = []
        files = sorted(p for p in self.root.rglob("*") if p.suffix.lower() in self.extensions and p.is_file())
        for path in files:
            relative = path.relative_to(self.root).as_posix()
            subject = self._subject_of(relative, path)
            if subject is None:
                self._unmatched(
                    path, f"subject_pattern {self.subject_pattern.pattern!r} does not match {relative!r}"
                )
                continue
            label = _search(self.label_pattern, relative, "label") if self.label_pattern else None
            if self.label_pattern is not None and label is None:
                self._unmatched(
                    path, f"label_pattern {self.label_pattern.pattern!r} does not match {relative!r}"
                )
                continue
            task = _search(self.task_pattern or _BIDS_TASK, relative, "task") or ""
            run = _search(_BIDS_RUN, path.name, "run")
            stem = path.name[: -len(path.suffix)]
            events_path = (
                path.with_name(stem[: -len("_eeg")] + "_events.tsv") if stem.endswith("_eeg") else None
            )
            refs.append(
                RecordingRef(
                    path=path,
                    dataset=self.dataset,
                    subject=subject,
                    task=task,
                    run=int(run) if run is not None else None,
                    session=_search(_BIDS_SESSION, path.name, "session"),
                    label=label,
                    events_path=events_path if events_path is not None and events_path.is_file() else None,
                    channels_path=sidecar_to_read(sibling_channels_tsv(path)),
                )
            )
        if not refs:
            raise FileNotFoundError(
                f"no recordings with extensions {self.extensions} under {self.root}"
                + (f" ({len(self.skipped)} files skipped: {self.skipped[0][1]})" if self.skipped else "")
            )
        return refs

    def read_subjects(self) -> pd.DataFrame:
        """The subject table shaped to ``SUBJECT_COLUMNS`` (extra columns kept as targets).

        Without ``subjects_file``, one NaN row per subject found on disk. Extra columns that are numbers
        throughout become floats; the rest stay text.
        """
        if self.subjects_file is None:
            table = subjects_without_table(ref.subject for ref in self.discover())
            table.attrs["notes"] = ["no subjects_file: subject traits and targets are NaN"]
            return table
        table = read_table(self.subjects_file)
        return shape_subject_table(table, self.subjects_file, self.id_column)

    def select_channels(self, refs: Sequence[RecordingRef]) -> ChannelSelection:
        """Settle the dataset's channel set from the headers of ``refs``; ``load`` then gives every recording it.

        Unreadable files are left out of the decision and reported in ``selection.unreadable``.
        """
        views, unreadable = [], []
        for ref in refs:
            try:
                raw = read_raw_lazy(ref.path)
            except RecordingError as exc:
                unreadable.append((str(ref.path), str(exc)))
                continue
            views.append((str(ref.path), *recording_channels(raw, self.channels)))
        self.selection = select_channels(
            self.dataset, views, self.channels, self.missing_channels, unreadable
        )
        return self.selection

    def _target_names(self) -> tuple[str, ...] | None:
        if self.selection is not None:
            return self.selection.names
        return self.channels if isinstance(self.channels, tuple) else None

    def load(self, ref: RecordingRef) -> LoadedRecording:
        """Open lazily, keep the dataset's channel set under 10-05 names, set a montage when all are known.

        Before ``select_channels`` ran, 'common' keeps each recording's scalp channels in file order.
        """
        raw = read_raw_lazy(ref.path)
        notes: list[str] = []
        kept, dropped = recording_channels(raw, self.channels)
        names = self._target_names()
        by_name = {name: label for label, name in kept.items()}
        if names is None:
            names = tuple(kept.values())
        else:
            dropped.update({label: "not in the channel set" for label, n in kept.items() if n not in names})
        missing = [name for name in names if name not in by_name]
        if missing and self.missing_channels == "skip":
            raise RecordingError(
                ref.path, f"lacks channel(s) {missing} of the dataset's channel set (missing_channels=skip)"
            )
        present = [name for name in names if name in by_name]
        if not present:
            examples = "; ".join(f"{label!r}: {why}" for label, why in list(dropped.items())[:3])
            raise RecordingError(
                ref.path,
                f"none of its {len(raw.ch_names)} channels is usable with channels={self.channels!r} "
                f"({examples}); channels='all' keeps channels without a 10-05 position",
            )
        if dropped and self.selection is None:  # with a selection, the build reports them once per dataset
            notes.append(f"dropped {len(dropped)} channels: {sorted(dropped)}")
        raw.pick([by_name[name] for name in present])
        raw.rename_channels({by_name[name]: name for name in present if by_name[name] != name})
        raw.reorder_channels(present)
        events = (
            read_events_tsv(Path(ref.events_path))
            if ref.events_path is not None
            else events_from_annotations(raw)
        )
        events, event_notes = clean_events(events, duration_s(raw))
        if missing:
            raw = _padded(raw, names)
            notes.append(f"padded {len(missing)} missing channel(s) with zeros: {missing}")
        if set_known_montage(raw) is None:
            unknown = [n for n in raw.ch_names if normalise_1020_name(n) is None]
            notes.append(
                f"no montage set: {len(unknown)} channels without a known position, e.g. {unknown[:3]}"
            )
        notes += mark_bad_channels(raw, ref.channels_path, kept)  # BIDS channels.tsv status=bad
        return LoadedRecording(
            ref=ref, raw=raw, events=events, notes=notes + event_notes, padded_channels=missing
        )


def _padded(raw: mne.io.BaseRaw, names: Sequence[str]) -> mne.io.RawArray:
    """``raw`` with a zero channel for each of ``names`` it lacks, in the order of ``names``."""
    data = np.zeros((len(names), raw.n_times))
    data[[names.index(name) for name in raw.ch_names]] = raw.get_data()
    return mne.io.RawArray(data, mne.create_info(list(names), raw.info["sfreq"], "eeg"), verbose="error")
