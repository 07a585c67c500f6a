"""Shared test helpers: where the real EEG fixtures are, and whether they may be skipped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _fixtures_dir() -> Path:
    return Path(os.environ.get("EEGPHASE_FIXTURES", ROOT.parent / "shared" / "fixtures"))


def _required(path: Path, what: str) -> Path:
    """``path`` when it is a folder; else skip, or fail when EEGPHASE_REQUIRE_FIXTURES=1 (CI)."""
    if not path.is_dir():
        if os.environ.get("EEGPHASE_REQUIRE_FIXTURES") == "1":
            pytest.fail(f"EEGPHASE_REQUIRE_FIXTURES=1 but the {what} folder {path} does not exist")
        pytest.skip(f"{what} not found at {path}")
    return path


@pytest.fixture(scope="session")
def real_fixtures() -> Path:
    """The folder of real EEG files; skipped when absent unless EEGPHASE_REQUIRE_FIXTURES=1 (CI)."""
    return _required(_fixtures_dir(), "real EEG fixtures")


@pytest.fixture(scope="session")
def mumtaz_mdd() -> Path:
    """The shared Mumtaz MDD subset (40 real EDF files, see its README.txt); skipped like ``real_fixtures``."""
    default = ROOT.parent / "shared" / "datasets" / "mumtaz-mdd"
    return _required(Path(os.environ.get("EEGPHASE_MUMTAZ_MDD", default)), "Mumtaz MDD dataset")
