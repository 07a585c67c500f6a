"""A small synthetic HBN (.set, 500 Hz) + TUH dataset and its prepared cache, built once per test session."""

from __future__ import annotations

from pathlib import Path

import mne
import pytest

from eegphase.data.prepare_cache import prepare
from eegphase.data.synthetic import generate_hbn, generate_tuh

mne.set_log_level("ERROR")

MODES = ["challenge1", "challenge2", "pretrain", "movies", "mixed"]


def hbn_tuh_config(hbn: Path, tuh: Path) -> dict:
    """The same sources as ``conf/data/hbn_tuh.yaml``."""
    return {
        "name": "hbn_tuh",
        "sources": {"hbn": {"kind": "hbn", "root": str(hbn)}, "tuh": {"kind": "tuh", "root": str(tuh)}},
        "modes": MODES,
    }


@pytest.fixture(scope="session")
def small_sources(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("sources")
    hbn = generate_hbn(
        root / "hbn",
        releases=["R1", "R2"],
        subjects_per_release=3,
        fmt="set",
        duration_scale=0.05,
        ccd_trials_per_run=6,
        six_channel_recordings=1,
        progress=False,
    )
    tuh = generate_tuh(root / "tuh", n_subjects=3, duration_scale=0.2, progress=False)
    return Path(hbn), Path(tuh)


@pytest.fixture(scope="session")
def prepared(small_sources, tmp_path_factory):
    """(cache_dir, manifest, report, windows tables) of a clean build."""
    hbn, tuh = small_sources
    cache = tmp_path_factory.mktemp("cache") / "cache"
    manifest, report, tables = prepare(hbn_tuh_config(hbn, tuh), cache, n_jobs=2, progress=False)
    return cache, manifest, report, tables
