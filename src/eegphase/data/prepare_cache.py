"""Everything ``python -m eegphase.prepare`` does, callable from code: cache, manifest, windows tables."""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

import pandas as pd

from eegphase.data.build import BuildReport, build_cache
from eegphase.data.cache import write_failed
from eegphase.data.datasets import windows_path
from eegphase.data.manifest import Manifest, write_parquet_atomic
from eegphase.data.preprocess import PreprocessConfig
from eegphase.data.sources import readers_from_config
from eegphase.data.splits import SplitConfig, assign_splits, attach_splits
from eegphase.data.windows import WindowConfig, build_windows
from eegphase.paths import require_writable

log = logging.getLogger(__name__)
WINDOWS_VERSION = 2  # bump when windows.py changes what a table holds


def prepare(
    data_cfg: Mapping,
    cache_dir: str | Path,
    preprocess_cfg: Mapping | PreprocessConfig | None = None,
    windows_cfg: Mapping | WindowConfig | None = None,
    split_cfg: Mapping | SplitConfig | None = None,
    modes: Sequence[str] | None = None,
    n_jobs: int = 1,
    verify_checksum: bool = False,
    progress: bool = True,
) -> tuple[Manifest, BuildReport, dict[str, pd.DataFrame]]:
    """Build what is missing and return the manifest, the build report and each mode's windows (with splits)."""
    require_writable(cache_dir, "cache_dir")  # before any recording is read
    pcfg = _as(PreprocessConfig, preprocess_cfg)
    wcfg = _as(WindowConfig, windows_cfg)
    scfg = _as(SplitConfig, split_cfg)
    readers = readers_from_config(data_cfg)
    manifest, report = build_cache(
        readers, cache_dir, pcfg, n_jobs=n_jobs, checksum=verify_checksum, progress=progress
    )
    splits = None
    tables = {}
    for mode in modes or data_cfg.get("modes", ()):
        path = windows_path(cache_dir, mode)
        key = _windows_key(manifest, mode, wcfg, scfg)
        stamp = path.with_name(f".{path.name}.key")
        if path.exists() and stamp.exists() and stamp.read_text() == key:
            tables[mode] = pd.read_parquet(path)  # same recordings and settings: nothing to rebuild
            continue
        table = build_windows(manifest, mode, wcfg)
        if len(manifest.recordings):
            splits = assign_splits(manifest.recordings, scfg) if splits is None else splits
            table = attach_splits(table, splits)
        try:
            write_parquet_atomic(table, path)
            stamp.write_text(key)
        except OSError as err:  # a full disk: name the table, not only the errno
            raise write_failed(err, err.filename or path) from err
        tables[mode] = table
    return manifest, report, tables


def _windows_key(manifest: Manifest, mode: str, wcfg: WindowConfig, scfg: SplitConfig) -> str:
    payload = json.dumps(
        {
            "version": WINDOWS_VERSION,
            "manifest": manifest.fingerprint,
            # windows carry subject columns and recording labels: a changed table or label_pattern rebuilds them
            "subjects": hashlib.sha256(manifest.subjects.to_csv(index=False).encode()).hexdigest(),
            "labels": list(manifest.recordings["label"]) if "label" in manifest.recordings else [],
            "mode": mode,
            "windows": asdict(wcfg),
            "split": asdict(scfg),
        },
        sort_keys=True,
        default=str,
    )
    return hashlib.sha256(payload.encode()).hexdigest()


def _as(cls, value):
    if value is None:
        return cls()
    if isinstance(value, cls):
        return value
    return cls.from_mapping(value)


def summary_table(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Windows per mode and split, with subject counts: what ``prepare`` prints."""
    rows = []
    for mode, table in tables.items():
        for split in ("train", "val", "test"):
            part = table[table["split"] == split] if "split" in table else table.iloc[:0]
            rows.append(
                {"mode": mode, "split": split, "windows": len(part), "subjects": part["subject"].nunique()}
            )
    frame = pd.DataFrame(rows)
    return frame.pivot_table(
        index="mode", columns="split", values=["windows", "subjects"], aggfunc="sum"
    ).fillna(0)
