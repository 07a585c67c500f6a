"""Sweeps run as a user runs them: ``python -m eegphase.run -m ...`` subprocesses (``cli_helpers.run_cli``) in
scratch folders."""

from __future__ import annotations

from pathlib import Path

import pytest

from eegphase.data.synthetic import generate_hbn

# The baseline pipeline (fine-tuning only, challenge 1 only: the objective is then val_nrmse_c1), one short
# epoch, on top of cli_helpers.TINY (debug=smoke).
BASELINE_C1 = [
    "+pipeline=baseline",
    "phases.finetune.epochs=1",
    "phases.finetune.freeze_epochs=0",
    "phases.finetune.max_batches_per_epoch=2",
    "~phases.finetune.tasks.challenge2",
]


@pytest.fixture(scope="session")
def sweep_data(tmp_path_factory) -> dict[str, Path]:
    """A tiny generated HBN dataset and a preprocessing cache shared by every sweep test (``run_cli`` keywords)."""
    base = tmp_path_factory.mktemp("sweep-data")
    root = generate_hbn(base / "hbn", releases=["R1", "R2"], subjects_per_release=6, fmt="bdf",
                        duration_scale=0.05, ccd_trials_per_run=8, seed=0, progress=False)  # fmt: skip
    return {"data_root": Path(root), "cache_dir": base / "cache"}
