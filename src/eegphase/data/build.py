"""Build (or top up) the preprocessed cache from one or more readers, in parallel, with a progress bar.

Every recording is processed independently and published atomically, so killing a build loses at most the
recordings in flight; the next build verifies what exists, rebuilds what is missing or damaged, and reports
recordings it had to skip (with the file and the reason) instead of stopping.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import mne
import pandas as pd
from tqdm.auto import tqdm

from eegphase.data.cache import CacheEntry, RecordingCache, entry_key
from eegphase.data.manifest import Manifest
from eegphase.data.preprocess import PreprocessConfig, preprocess
from eegphase.data.readers.channel_set import ChannelSelection
from eegphase.data.recording import Reader, RecordingError, RecordingRef

log = logging.getLogger(__name__)


@dataclass
class BuildReport:
    """What a build did: counts, and every recording it could not use, with the reason."""

    built: int = 0
    reused: int = 0
    rebuilt: list[tuple[str, str]] = field(
        default_factory=list
    )  # (recording, why the old entry was rejected)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    channels: dict[str, ChannelSelection] = field(default_factory=dict)  # dataset -> its channel set


def _process_one(reader: Reader, ref: RecordingRef, cfg: PreprocessConfig, cache_dir: str, key: str):
    """Worker: load, preprocess and publish one recording. Returns ('ok', entry) or ('skip', reason)."""
    mne.set_log_level("ERROR")
    try:
        loaded = reader.load(ref)
        rec = preprocess(loaded, cfg)
    except RecordingError as exc:
        return "skip", str(exc)
    except Exception as exc:  # an unexpected failure in one file must not stop the others
        return "skip", f"{ref.path}: {type(exc).__name__}: {exc}"
    if rec.data.shape[0] == 0:
        return "skip", f"{ref.path}: no samples left after preprocessing"
    return "ok", RecordingCache(cache_dir).write(key, ref, rec, cfg)


def build_cache(
    readers: Sequence[Reader],
    cache_dir: str | Path,
    cfg: PreprocessConfig,
    n_jobs: int = 1,
    checksum: bool = False,
    progress: bool = True,
) -> tuple[Manifest, BuildReport]:
    """Make sure every recording of ``readers`` is in the cache; write and return the manifest."""
    cache = RecordingCache(cache_dir)
    cache.clean_tmp()
    report = BuildReport()
    entries: list[tuple[RecordingRef, CacheEntry]] = []
    todo: list[tuple[Reader, RecordingRef, str]] = []
    subjects = []
    for reader in readers:
        found = reader.discover()
        if not found:
            raise FileNotFoundError(
                f"no recordings found under {reader.root} for data source {reader.dataset!r}: check data.root"
            )
        subjects.append(reader.read_subjects().assign(dataset=reader.dataset))
        channels = None
        if hasattr(reader, "select_channels"):  # readers without a fixed layout settle one set per dataset
            selection = reader.select_channels(found)
            report.channels[reader.dataset] = selection
            for line in selection.summary_lines():
                log.info(line)
            left_out = selection.skipped()
            report.skipped.extend(left_out)
            found = [ref for ref in found if str(ref.path) not in {path for path, _ in left_out}]
            channels = selection.key
        for ref in found:
            try:
                key = entry_key(ref, cfg, channels)
            except OSError as exc:
                report.skipped.append((str(ref.path), f"cannot stat source: {exc}"))
                continue
            entry, damage = cache.lookup(key, checksum=checksum)
            if damage:
                report.rebuilt.append((ref.name, damage))
            if entry is not None:
                entries.append((ref, entry))
                report.reused += 1
            else:
                todo.append((reader, ref, key))

    bar = tqdm(total=len(todo), desc="preprocess", unit="rec", disable=not progress or not todo)
    if n_jobs <= 1 or len(todo) <= 1:
        for reader, ref, key in todo:
            _collect(_process_one(reader, ref, cfg, str(cache_dir), key), ref, entries, report)
            bar.update()
    else:
        workers = min(n_jobs, len(todo), os.cpu_count() or 1)
        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = {
                pool.submit(_process_one, r, ref, cfg, str(cache_dir), key): ref for r, ref, key in todo
            }
            for future in as_completed(futures):
                _collect(future.result(), futures[future], entries, report)
                bar.update()
    bar.close()

    subject_table = pd.concat(subjects, ignore_index=True) if subjects else pd.DataFrame()
    manifest = Manifest.from_entries(
        cache_dir,
        entries,
        subject_table,
        report.skipped,
        {d: s.as_dict() for d, s in report.channels.items()},
    )
    manifest.save()
    return manifest, report


def _collect(result, ref: RecordingRef, entries: list, report: BuildReport) -> None:
    status, value = result
    if status == "ok":
        entries.append((ref, value))
        report.built += 1
    else:
        report.skipped.append((str(ref.path), value))
