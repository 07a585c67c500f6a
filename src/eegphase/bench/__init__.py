"""Benchmarks: each prints a table of side-by-side measurements and writes ``bench-<name>.json``."""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable
from pathlib import Path


def write_results(name: str, results: dict, folder: str | Path = ".") -> Path:
    """Write a benchmark's figures as a flat JSON object ``bench-<name>.json``."""
    flat = {k: v for k, v in results.items() if isinstance(v, (int, float, str, bool)) or v is None}
    path = Path(folder) / f"bench-{name}.json"
    path.write_text(json.dumps(flat, indent=2, sort_keys=True) + "\n")
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
