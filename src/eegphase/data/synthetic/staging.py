"""Write a dataset into a hidden folder beside ``out`` and rename it at the end.

An interrupted generation therefore never leaves a folder that looks complete (the Makefile checks for
``participants.tsv`` / ``.complete``).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

COMPLETE_MARKER = ".complete"


@contextmanager
def staged_output(out: Path, settings: dict, overwrite: bool = False) -> Iterator[Path]:
    """Yield a staging folder; on success write ``.complete`` (the settings) and move it to ``out``."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not overwrite:
        raise FileExistsError(f"{out} already exists and is not empty; pass overwrite=true to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    stage = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir()
    try:
        yield stage
        (stage / COMPLETE_MARKER).write_text(json.dumps(settings, indent=2, sort_keys=True) + "\n")
        if out.exists():
            shutil.rmtree(out)
        stage.rename(out)
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
