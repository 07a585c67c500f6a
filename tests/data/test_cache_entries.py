"""The Zarr cache on its own: layout readable by zarr, atomic publish, damage detected and rebuilt."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from eegphase.data.cache import CHUNK, MARKER, RecordingCache, entry_key
from eegphase.data.preprocess import PreprocessConfig, PreprocessedRecording
from eegphase.data.recording import RecordingRef


def _recording(seed: int = 0, n_times: int = 500) -> PreprocessedRecording:
    rng = np.random.default_rng(seed)
    events = pd.DataFrame(
        {"onset": [0.5, 1.5], "duration": [0.0, 0.0], "value": ["a", "b"], "feedback": ["x", None]}
    )
    return PreprocessedRecording(
        data=rng.normal(size=(n_times, 4)).astype(np.float32),
        sfreq=100.0,
        ch_names=["A", "B", "C", "D"],
        events=events,
    )


@pytest.fixture
def source(tmp_path: Path) -> RecordingRef:
    path = tmp_path / "rec.edf"
    path.write_bytes(b"not really read here")
    return RecordingRef(path=path, dataset="test", subject="s1", task="rest")


def test_entry_is_a_zarr_array_and_a_memmap(tmp_path, source):
    cache = RecordingCache(tmp_path / "cache")
    cfg = PreprocessConfig()
    rec = _recording()
    entry = cache.write(entry_key(source, cfg), source, rec, cfg)
    assert np.array_equal(entry.open_zarr()[:], rec.data)
    assert np.array_equal(np.asarray(entry.memmap()), rec.data)
    assert entry.events["value"].tolist() == ["a", "b"]
    assert entry.events["onset"].tolist() == [0.5, 1.5]
    assert not any((tmp_path / "cache" / "tmp").iterdir())


def test_key_changes_with_config_and_source(tmp_path, source):
    base = entry_key(source, PreprocessConfig())
    assert entry_key(source, PreprocessConfig()) == base
    assert entry_key(source, PreprocessConfig(l_freq=1.0)) != base
    source.path.write_bytes(b"different content, different size")
    assert entry_key(source, PreprocessConfig()) != base


def test_truncated_chunk_is_detected_and_removed(tmp_path, source):
    cache = RecordingCache(tmp_path / "cache")
    cfg = PreprocessConfig()
    key = entry_key(source, cfg)
    entry = cache.write(key, source, _recording(), cfg)
    chunk = entry.path / CHUNK
    chunk.write_bytes(chunk.read_bytes()[:100])
    found, why = cache.lookup(key)
    assert found is None and "truncated" in why and str(chunk) in why
    assert not entry.path.exists()


def test_flipped_bytes_are_caught_by_checksum(tmp_path, source):
    cache = RecordingCache(tmp_path / "cache")
    cfg = PreprocessConfig()
    key = entry_key(source, cfg)
    entry = cache.write(key, source, _recording(), cfg)
    chunk = entry.path / CHUNK
    raw = bytearray(chunk.read_bytes())
    raw[10] ^= 0xFF
    chunk.write_bytes(bytes(raw))
    assert cache.lookup(key, checksum=False)[0] is not None  # same size: only the checksum can tell
    found, why = cache.lookup(key, checksum=True)
    assert found is None and "checksum" in why


def test_entry_without_marker_is_never_used(tmp_path, source):
    cache = RecordingCache(tmp_path / "cache")
    cfg = PreprocessConfig()
    key = entry_key(source, cfg)
    entry = cache.write(key, source, _recording(), cfg)
    (entry.path / MARKER).unlink()
    found, why = cache.lookup(key)
    assert found is None and MARKER in why


def test_all_zero_recording_still_has_its_chunk(tmp_path, source):
    """Zarr skips chunks equal to the fill value unless told not to; the cache must always write them."""
    cache = RecordingCache(tmp_path / "cache")
    cfg = PreprocessConfig()
    rec = _recording()
    rec.data[:] = 0.0
    entry = cache.write(entry_key(source, cfg), source, rec, cfg)
    assert (entry.path / CHUNK).stat().st_size == rec.data.nbytes
