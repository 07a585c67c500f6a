"""Shared test helpers: where the real EEG fixtures are, and whether they may be skipped."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _fixtures_dir() -> Path:
    return Path(os.environ.get("EEGPHASE_FIXTURES", ROOT.parent / "shared" / "fixtures"))


@pytest.fixture(scope="session")
def real_fixtures() -> Path:
    """The folder of real EEG files; skipped when absent unless EEGPHASE_REQUIRE_FIXTURES=1 (CI)."""
    path = _fixtures_dir()
    if not path.is_dir():
        if os.environ.get("EEGPHASE_REQUIRE_FIXTURES") == "1":
            pytest.fail(f"EEGPHASE_REQUIRE_FIXTURES=1 but the fixtures folder {path} does not exist")
        pytest.skip(f"real EEG fixtures not found at {path}")
    return path
