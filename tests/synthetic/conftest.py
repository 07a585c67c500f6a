"""Small synthetic datasets shared by the tests in this folder (generated once per session)."""

from __future__ import annotations

from pathlib import Path

import pytest

from eegphase.data.synthetic import generate_hbn, generate_tuh


@pytest.fixture(scope="session")
def hbn_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """EEGLAB .set + .fdt at 500 Hz: two releases, one subject each, one 6-channel recording requested."""
    out = tmp_path_factory.mktemp("synth") / "hbn-set"
    return generate_hbn(
        out,
        releases=["R1", "R2"],
        subjects_per_release=1,
        fmt="set",
        duration_scale=0.03,
        ccd_trials_per_run=3,
        seed=3,
        six_channel_recordings=1,
        progress=False,
    )


@pytest.fixture(scope="session")
def hbn_bdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """BDF at 100 Hz with enough subjects to see the planted effects across subjects."""
    out = tmp_path_factory.mktemp("synth") / "hbn-bdf"
    return generate_hbn(
        out,
        releases=["R1"],
        subjects_per_release=12,
        fmt="bdf",
        duration_scale=0.1,
        ccd_trials_per_run=8,
        seed=0,
        progress=False,
    )


@pytest.fixture(scope="session")
def tuh_edf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("synth") / "tuh"
    return generate_tuh(out, n_subjects=4, seed=1, duration_scale=0.05, progress=False)
