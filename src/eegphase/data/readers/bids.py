"""BIDS through mne-bids: EEG recordings found and named by their entities, and the channels a dataset's
``channels.tsv`` marks bad (``status`` = ``bad``), which the readers put in ``raw.info['bads']``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import mne
import mne_bids
import pandas as pd

from eegphase.data.recording import RecordingError


@dataclass(frozen=True)
class BidsRecording:
    """One EEG data file and the entities of its name (run as an int, None when absent)."""

    path: Path
    subject: str
    task: str
    session: str | None
    run: int | None
    bids_path: mne_bids.BIDSPath


def find_eeg_recordings(
    root: Path, extensions: Iterable[str], tasks: Iterable[str] | None = None
) -> list[BidsRecording]:
    """Every ``sub-*/**/sub-*_task-*_eeg.<ext>`` file under ``root`` (extensions matched in any case), sorted
    by path; ``tasks`` keeps those tasks only."""
    extensions = sorted({variant for ext in extensions for variant in (ext.lower(), ext.upper())})
    found = mne_bids.find_matching_paths(
        root,
        tasks=None if tasks is None else sorted(tasks),
        suffixes="eeg",
        extensions=extensions,
        ignore_json=True,
        ignore_nosub=True,
    )
    recordings = []
    for bids_path in found:
        if bids_path.subject is None or bids_path.task is None:
            continue
        recordings.append(
            BidsRecording(
                path=Path(bids_path.fpath),
                subject=bids_path.subject,
                task=bids_path.task,
                session=bids_path.session,
                run=int(bids_path.run) if bids_path.run is not None else None,
                bids_path=bids_path,
            )
        )
    return sorted(recordings, key=lambda recording: recording.path)


def channels_tsv(recording: BidsRecording) -> Path | None:
    """The recording's ``channels.tsv`` (BIDS inheritance as mne-bids resolves it), None when it has none."""
    found = recording.bids_path.find_matching_sidecar(suffix="channels", extension=".tsv", on_error="ignore")
    return None if found is None else Path(found)


def sibling_channels_tsv(path: Path) -> Path | None:
    """``<name>_channels.tsv`` beside a ``<name>_eeg.<ext>`` file, None when absent or not such a file."""
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    if not stem.endswith("_eeg"):
        return None
    sidecar = path.with_name(stem[: -len("_eeg")] + "_channels.tsv")
    return sidecar if sidecar.is_file() else None


def read_bad_channels(path: Path) -> list[str]:
    """Names whose ``status`` is ``bad`` in a BIDS channels.tsv, in file order (none without a status column).

    A file that cannot be read, or with a status column but no ``name`` column, is a ``RecordingError``.
    """
    try:
        with open(path, encoding="utf-8") as handle:  # most channels.tsv have no status: read the header only
            header = [column.strip() for column in handle.readline().split("\t")]
        if "status" not in header:
            return []
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (OSError, ValueError) as err:  # UnicodeDecodeError and pandas' ParserError are ValueErrors
        raise RecordingError(path, f"cannot read channels.tsv: {err}") from err
    if "name" not in table.columns:
        raise RecordingError(path, "channels.tsv has a status column but no 'name' column")
    return table.loc[table["status"].str.strip().str.lower() == "bad", "name"].str.strip().tolist()


def sidecar_to_read(path: Path | None) -> Path | None:
    """``path`` when loading must read it: it marks a channel bad, or cannot be read (the load then refuses
    the recording, naming it). None otherwise, so that recordings without bad channels keep their cache keys."""
    if path is None:
        return None
    try:
        return path if read_bad_channels(path) else None
    except RecordingError:
        return path


def mark_bad_channels(
    raw: mne.io.BaseRaw, path: Path | None, names: dict[str, str] | None = None
) -> list[str]:
    """Put the channels ``path`` marks bad into ``raw.info['bads']``; returns notes for the load.

    ``names`` maps the file's channel labels to ``raw``'s names when the reader renamed them. Marked channels
    that ``raw`` does not hold (dropped, or not in the file) are listed in a note.
    """
    if path is None:
        return []
    marked = read_bad_channels(path)
    renamed = [(names or {}).get(label, label) for label in marked]
    bads = [name for name in renamed if name in raw.ch_names]
    absent = [label for label, name in zip(marked, renamed, strict=True) if name not in raw.ch_names]
    raw.info["bads"] = list(dict.fromkeys([*raw.info["bads"], *bads]))
    notes = [f"{path.name} marks {len(bads)} channel(s) bad: {', '.join(bads)}"] if bads else []
    if absent:
        notes.append(f"{path.name} marks channel(s) bad that the recording does not hold: {absent}")
    return notes
