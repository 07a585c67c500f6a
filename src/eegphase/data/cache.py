"""A crash-safe Zarr v3 cache of preprocessed recordings.

Each recording is one Zarr group ``recordings/<key>.zarr`` whose array ``data`` is (n_times, n_channels)
float32, time-major, stored as a single uncompressed chunk. That layout makes a window a contiguous byte range,
so readers memory-map the chunk file directly instead of paying Zarr's per-call decode (the data stays a
normal Zarr array that ``zarr.open`` reads). Entries are written into ``tmp/`` and renamed into place with a
completion marker holding the chunk's size and SHA-256: a half-written entry never has the final name, and a
damaged one fails verification and is rebuilt, never used silently.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import pandas as pd
import zarr
from zarr.codecs import BytesCodec

from eegphase.data.preprocess import PreprocessConfig, PreprocessedRecording
from eegphase.data.recording import RecordingRef

CACHE_FORMAT_VERSION = 1
MARKER = "eegphase-complete.json"
CHUNK = Path("data") / "c" / "0" / "0"


class CacheCorruptError(Exception):
    """A cache entry failed verification; the message names the entry and what is wrong."""


class CacheWriteError(OSError):
    """Writing into the cache failed (a full disk, a permission): names the file, keeps the errno."""


def write_failed(err: OSError, path: str | Path) -> OSError:
    """``err`` as a :class:`CacheWriteError` naming ``path`` (the file being written), errno kept."""
    if isinstance(err, CacheWriteError):
        return err
    return CacheWriteError(err.errno, f"{err.strerror or err} while writing the cache", str(path))


def write_file(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` and fsync it; an OSError (ENOSPC: a full disk) names the file."""
    try:
        with open(path, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as err:
        raise write_failed(err, path) from err


def _file_identity(path: Path) -> dict:
    stat = path.stat()
    return {"path": str(path.resolve()), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def source_identity(ref: RecordingRef) -> list[dict]:
    """Identity of every file a recording is read from (EEGLAB's .fdt, the events file and a channels.tsv
    marking bad channels included)."""
    files = [ref.path]
    fdt = ref.path.with_suffix(".fdt")
    if ref.path.suffix == ".set" and fdt.exists():
        files.append(fdt)
    if ref.events_path is not None and ref.events_path.exists():
        files.append(ref.events_path)
    if ref.channels_path is not None and ref.channels_path.exists():  # set only when it marks bad channels
        files.append(ref.channels_path)
    return [_file_identity(f) for f in files]


def entry_key(ref: RecordingRef, cfg: PreprocessConfig, channels: str | list[str] | None = None) -> str:
    """Hash of the source files' identity, the preprocessing config and the dataset's channel set (when its
    reader chooses one, see ``ChannelSelection.key``): the entry's name."""
    payload = {
        "version": CACHE_FORMAT_VERSION,
        "dataset": ref.dataset,
        "sources": source_identity(ref),
        "preprocess": cfg.as_dict(),
    }
    if channels is not None:  # absent for readers with a fixed layout, so their keys stay as they were
        payload["channels"] = channels
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def _sha256_file(path: Path, block: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(block):
            digest.update(chunk)
    return digest.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@dataclass
class CacheEntry:
    """One verified recording in the cache."""

    key: str
    path: Path
    meta: dict

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.meta["shape"])

    @property
    def sfreq(self) -> float:
        return float(self.meta["sfreq"])

    @property
    def ch_names(self) -> list[str]:
        return list(self.meta["ch_names"])

    @cached_property
    def events(self) -> pd.DataFrame:
        frame = pd.DataFrame.from_records(self.meta["events"], columns=self.meta["event_columns"])
        return frame.infer_objects()

    def memmap(self) -> np.memmap:
        """The (n_times, n_channels) samples, memory-mapped read-only from the raw chunk file."""
        return np.memmap(self.path / CHUNK, dtype="<f4", mode="r", shape=self.shape)

    def open_zarr(self) -> zarr.Array:
        """The same samples through Zarr's own API (for users and cross-checks)."""
        return zarr.open_array(self.path / "data", mode="r")


class RecordingCache:
    """The folder ``<cache_dir>/recordings`` of preprocessed recordings, one Zarr group each."""

    def __init__(self, cache_dir: str | Path):
        self.root = Path(cache_dir)
        self.recordings = self.root / "recordings"
        self.tmp = self.root / "tmp"

    def entry_path(self, key: str) -> Path:
        return self.recordings / f"{key}.zarr"

    def verify(self, key: str, checksum: bool = False) -> CacheEntry:
        """Return the entry if it is complete and intact; raise CacheCorruptError (or FileNotFoundError)."""
        path = self.entry_path(key)
        if not path.exists():
            raise FileNotFoundError(path)
        marker = path / MARKER
        if not marker.exists():
            raise CacheCorruptError(f"{path}: no completion marker {MARKER}")
        try:
            meta = json.loads(marker.read_text())
        except (OSError, ValueError) as exc:
            raise CacheCorruptError(f"{marker}: unreadable completion marker ({exc})") from exc
        chunk = path / CHUNK
        expected = int(np.prod(meta["shape"])) * 4
        size = chunk.stat().st_size if chunk.exists() else -1
        if size != expected:
            raise CacheCorruptError(
                f"{chunk}: {size} bytes on disk, {expected} expected (truncated or missing)"
            )
        if checksum and _sha256_file(chunk) != meta["sha256"]:
            raise CacheCorruptError(f"{chunk}: checksum mismatch (the data changed after it was written)")
        return CacheEntry(key=key, path=path, meta=meta)

    def lookup(self, key: str, checksum: bool = False) -> tuple[CacheEntry | None, str | None]:
        """The entry, or (None, reason) when absent or damaged; a damaged entry is removed so it gets rebuilt."""
        try:
            return self.verify(key, checksum=checksum), None
        except FileNotFoundError:
            return None, None
        except CacheCorruptError as exc:
            shutil.rmtree(self.entry_path(key), ignore_errors=True)
            return None, str(exc)

    def write(
        self, key: str, ref: RecordingRef, rec: PreprocessedRecording, cfg: PreprocessConfig
    ) -> CacheEntry:
        """Write an entry aside, then publish it with one atomic rename. A failed write (a full disk) raises a
        :class:`CacheWriteError` naming the file it was writing."""
        staging = self.tmp / f"{key}-{os.getpid()}-{uuid.uuid4().hex[:8]}.zarr"
        writing = self.recordings  # what an OSError was writing when it came
        try:
            self.recordings.mkdir(parents=True, exist_ok=True)
            writing = self.tmp
            self.tmp.mkdir(parents=True, exist_ok=True)
            writing = staging
            group = zarr.open_group(staging, mode="w")
            array = group.create_array(
                "data",
                shape=rec.data.shape,
                chunks=rec.data.shape,
                dtype="float32",
                compressors=None,
                filters=None,
                serializer=BytesCodec(endian="little"),
                fill_value=0.0,
                config={"write_empty_chunks": True},
            )
            writing = staging / CHUNK
            array[...] = rec.data
            events = rec.events.astype(object).where(rec.events.notna(), None)
            meta = {
                "format_version": CACHE_FORMAT_VERSION,
                "key": key,
                "shape": list(rec.data.shape),
                "sfreq": rec.sfreq,
                "ch_names": rec.ch_names,
                "bad_channels": rec.bad_channels,
                "padded_channels": rec.padded_channels,
                "channel_mask": [name not in rec.padded_channels for name in rec.ch_names],
                "notes": rec.notes,
                "source": source_identity(ref),
                "ref": {
                    "dataset": ref.dataset,
                    "subject": ref.subject,
                    "task": ref.task,
                    "run": ref.run,
                    "release": ref.release,
                    "session": ref.session,
                    "label": ref.label,
                },
                "preprocess": cfg.as_dict(),
                "event_columns": list(rec.events.columns),
                "events": events.values.tolist(),
                "sha256": _sha256_file(staging / CHUNK),
            }
            writing = staging / "zarr.json"
            group.attrs.update({k: meta[k] for k in ("shape", "sfreq", "ch_names", "ref", "preprocess")})
            writing = staging / CHUNK
            _fsync(staging / CHUNK)  # the data, then the proof it is complete (write_file syncs it)
            writing = staging / MARKER
            write_file(staging / MARKER, json.dumps(meta, default=_json_default).encode())
            final = self.entry_path(key)
            try:
                os.rename(staging, final)
            except OSError:
                # Another worker published the same entry first; keep theirs if it verifies.
                shutil.rmtree(staging, ignore_errors=True)
                return self.verify(key)
        except OSError as err:
            shutil.rmtree(staging, ignore_errors=True)
            raise write_failed(err, err.filename or writing) from err
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return CacheEntry(key=key, path=final, meta=json.loads((final / MARKER).read_text()))

    def clean_tmp(self) -> int:
        """Remove staging folders left by processes that no longer run; returns how many."""
        if not self.tmp.exists():
            return 0
        removed = 0
        for path in self.tmp.iterdir():
            parts = path.name.split("-")
            pid = int(parts[1]) if len(parts) >= 3 and parts[1].isdigit() else None
            if pid is not None and _pid_alive(pid):
                continue
            shutil.rmtree(path, ignore_errors=True)
            removed += 1
        return removed


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in cache metadata")
