"""The cache's manifest: Parquet tables of recordings, subjects and skipped files that users read with pandas."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from eegphase.data.cache import CacheEntry, RecordingCache
from eegphase.data.recording import RecordingRef

RECORDINGS = "recordings.parquet"
SUBJECTS = "subjects.parquet"
SKIPPED = "skipped.parquet"


def write_parquet_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write next to the target and rename, so readers never see a half-written table."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


@dataclass
class Manifest:
    """Which recordings the cache holds (one row each, keyed by ``key``) and who the subjects are."""

    cache_dir: Path
    recordings: pd.DataFrame
    subjects: pd.DataFrame
    skipped: pd.DataFrame

    @classmethod
    def from_entries(
        cls,
        cache_dir: str | Path,
        entries: Iterable[tuple[RecordingRef, CacheEntry]],
        subjects: pd.DataFrame,
        skipped: Iterable[tuple[str, str]],
    ) -> Manifest:
        rows = []
        for ref, entry in entries:
            n_times, n_channels = entry.shape
            rows.append(
                {
                    "key": entry.key,
                    "dataset": ref.dataset,
                    "subject": ref.subject,
                    "task": ref.task,
                    "run": ref.run,
                    "release": ref.release,
                    "session": ref.session,
                    "label": ref.label,
                    "path": str(ref.path),
                    "sfreq": entry.sfreq,
                    "n_times": n_times,
                    "n_channels": n_channels,
                    "duration_s": n_times / entry.sfreq,
                    "n_bad_channels": len(entry.meta.get("bad_channels", [])),
                    "notes": " | ".join(entry.meta.get("notes", [])),
                }
            )
        recordings = pd.DataFrame(rows)
        if len(recordings):
            recordings["run"] = recordings["run"].astype("Int64")
            recordings = recordings.sort_values(
                ["dataset", "subject", "task", "run", "path"], ignore_index=True
            )
        skipped_frame = pd.DataFrame(list(skipped), columns=["file", "reason"])
        return cls(Path(cache_dir), recordings, subjects.reset_index(drop=True), skipped_frame)

    @classmethod
    def load(cls, cache_dir: str | Path) -> Manifest:
        root = Path(cache_dir)
        path = root / RECORDINGS
        if not path.exists():
            raise FileNotFoundError(
                f"no manifest at {path}: build the cache first (python -m eegphase.prepare)"
            )
        skipped = pd.read_parquet(root / SKIPPED) if (root / SKIPPED).exists() else pd.DataFrame()
        return cls(root, pd.read_parquet(path), pd.read_parquet(root / SUBJECTS), skipped)

    def save(self) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        write_parquet_atomic(self.subjects, self.cache_dir / SUBJECTS)
        write_parquet_atomic(self.skipped, self.cache_dir / SKIPPED)
        write_parquet_atomic(self.recordings, self.cache_dir / RECORDINGS)

    @property
    def fingerprint(self) -> str:
        """A hash of the recordings' keys: changes whenever the cache's content would."""
        keys = "\n".join(sorted(self.recordings["key"])) if len(self.recordings) else ""
        return hashlib.sha256(keys.encode()).hexdigest()[:16]

    def entry(self, key: str) -> CacheEntry:
        return RecordingCache(self.cache_dir).verify(key)
