"""A small real prepared cache (challenge 1 windows of generated HBN data) for the tracking tests."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import mne
import pytest

from eegphase.data.prepare_cache import prepare
from eegphase.data.synthetic import generate_hbn

mne.set_log_level("ERROR")


@pytest.fixture(scope="session")
def challenge1_cache(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("tracking-data")
    hbn = generate_hbn(root / "hbn", releases=["R1"], subjects_per_release=6, fmt="bdf", duration_scale=0.05,
                       ccd_trials_per_run=6, seed=0, progress=False)  # fmt: skip
    cache = root / "cache"
    data_cfg = {"name": "hbn", "sources": {"hbn": {"kind": "hbn", "root": str(hbn)}}, "modes": ["challenge1"]}
    prepare(data_cfg, cache, modes=["challenge1"], progress=False)
    return cache


def wait_until_ready(procs: list[tuple[Path, subprocess.Popen]]) -> None:
    """Until every process has written its ready file (at most 5 minutes); one that died first fails the test."""
    deadline = time.monotonic() + 300
    while not all(ready.exists() for ready, _ in procs) and time.monotonic() < deadline:
        assert all(proc.poll() is None for _, proc in procs), [p.stderr.read() for _, p in procs]
        time.sleep(0.05)
