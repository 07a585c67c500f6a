"""Benchmarks: each prints a table of side-by-side measurements and writes ``bench-<name>.json``."""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Callable
from pathlib import Path


def write_results(name: str, results: dict, folder: str | Path = ".") -> Path:
    """Write a benchmark's figures as a flat JSON object ``bench-<name>.json``; a figure that could not be
    measured (NaN, infinite) is written as ``null``, so strict JSON parsers read the file. A missing folder is
    created: a typo in ``--out-dir`` must not cost the minutes of measurement before it."""
    flat = {k: v for k, v in results.items() if isinstance(v, (int, float, str, bool)) or v is None}
    flat = {k: None if isinstance(v, float) and not math.isfinite(v) else v for k, v in flat.items()}
    path = Path(folder) / f"bench-{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(flat, indent=2, sort_keys=True, allow_nan=False) + "\n")
    return path


def interleaved(candidates: dict[str, Callable[[], float]], repeats: int) -> dict[str, float]:
    """Run candidates in turn ``repeats`` times (so machine noise hits all alike); median of each's rate."""
    rates: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, run in candidates.items():
            rates[name].append(run())
    return {name: statistics.median(values) for name, values in rates.items()}


def timed(fn: Callable[[], object]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
