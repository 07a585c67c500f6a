"""Readers: one per data source, all implementing ``eegphase.data.recording.Reader``.

``make_reader('hbn' | 'tuh' | 'folder', root, **options)`` builds one from config values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from eegphase.data.readers.folder import FolderReader
from eegphase.data.readers.hbn import HbnReader
from eegphase.data.readers.quality import check_signal_quality
from eegphase.data.readers.tuh import TuhReader
from eegphase.data.recording import Reader

READERS: dict[str, type] = {"hbn": HbnReader, "tuh": TuhReader, "folder": FolderReader}


def make_reader(kind: str, root: Path | str, **options: Any) -> Reader:
    """The reader for ``kind`` over ``root``; options go to its constructor (see each class)."""
    try:
        reader_class = READERS[kind]
    except KeyError:
        raise ValueError(f"unknown reader kind {kind!r}; choose one of {sorted(READERS)}") from None
    return reader_class(root, **options)


__all__ = ["READERS", "FolderReader", "HbnReader", "TuhReader", "check_signal_quality", "make_reader"]
