"""The cache's manifest: Parquet tables of recordings, subjects and skipped files that users read with pandas."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from eegphase.data.cache import CacheEntry, RecordingCache
from eegphase.data.recording import RecordingRef

RECORDINGS = "recordings.parquet"
SUBJECTS = "subjects.parquet"
SKIPPED = "skipped.parquet"
CHANNELS = "channels.json"


def write_parquet_atomic(frame: pd.DataFrame, path: Path) -> None:
    """Write next to the target and rename, so readers never see a half-written table."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    frame.to_parquet(tmp, index=False)
    os.replace(tmp, path)


@dataclass
class Manifest:
    """Which recordings the cache holds (one row each, keyed by ``key``) and who the subjects are.

    ``channels`` maps each dataset to its channel set: the ``ChannelSelection`` of readers that choose one
    (names, option, dropped labels), else the names its recordings share ('policy': 'reader').
    """

    cache_dir: Path
    recordings: pd.DataFrame
    subjects: pd.DataFrame
    skipped: pd.DataFrame
    channels: dict = field(default_factory=dict)

    @classmethod
    def from_entries(
        cls,
        cache_dir: str | Path,
        entries: Iterable[tuple[RecordingRef, CacheEntry]],
        subjects: pd.DataFrame,
        skipped: Iterable[tuple[str, str]],
        channels: Mapping[str, dict] | None = None,
    ) -> Manifest:
        rows = []
        entries = list(entries)
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
                    "n_padded_channels": len(entry.meta.get("padded_channels", [])),
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
        sets: dict[str, set[tuple[str, ...]]] = {}
        for ref, entry in entries:
            sets.setdefault(ref.dataset, set()).add(tuple(entry.ch_names))
        by_dataset = {
            dataset: {"policy": "reader", "names": list(next(iter(names))) if len(names) == 1 else None}
            for dataset, names in sorted(sets.items())
        }
        by_dataset.update(channels or {})
        return cls(Path(cache_dir), recordings, subjects.reset_index(drop=True), skipped_frame, by_dataset)

    @classmethod
    def load(cls, cache_dir: str | Path) -> Manifest:
        root = Path(cache_dir)
        path = root / RECORDINGS
        if not path.exists():
            raise FileNotFoundError(
                f"no manifest at {path}: build the cache first (python -m eegphase.prepare)"
            )
        skipped = pd.read_parquet(root / SKIPPED) if (root / SKIPPED).exists() else pd.DataFrame()
        channels = json.loads((root / CHANNELS).read_text()) if (root / CHANNELS).exists() else {}
        return cls(root, pd.read_parquet(path), pd.read_parquet(root / SUBJECTS), skipped, channels)

    def save(self) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        write_parquet_atomic(self.subjects, self.cache_dir / SUBJECTS)
        write_parquet_atomic(self.skipped, self.cache_dir / SKIPPED)
        tmp = self.cache_dir / f".{CHANNELS}.{os.getpid()}.tmp"
        tmp.write_text(json.dumps(self.channels, indent=1, sort_keys=True))
        os.replace(tmp, self.cache_dir / CHANNELS)
        write_parquet_atomic(self.recordings, self.cache_dir / RECORDINGS)

    @property
    def fingerprint(self) -> str:
        """A hash of the recordings' keys, their labels and the subject table: changes whenever the cache's
        content or the targets read from it would (an edited participants table retrains what used it)."""
        keys = "\n".join(sorted(self.recordings["key"])) if len(self.recordings) else ""
        labels = self.recordings.sort_values("key")["label"] if "label" in self.recordings else []
        digest = hashlib.sha256(keys.encode())
        digest.update("\n".join(map(str, labels)).encode())
        digest.update(self.subjects.to_csv(index=False).encode())
        return digest.hexdigest()[:16]

    def entry(self, key: str) -> CacheEntry:
        return RecordingCache(self.cache_dir).verify(key)
