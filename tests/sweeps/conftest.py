"""Sweeps run as a user runs them: ``python -m eegphase.run -m ...`` subprocesses in scratch folders."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from eegphase.config import CONF_DIR
from eegphase.data.synthetic import generate_hbn

# The baseline pipeline (fine-tuning only, challenge 1 only: the objective is then val_nrmse_c1) on the
# smoke data, one short epoch.
TINY = [
    "+pipeline=baseline",
    "experiment=smoke",
    "progress=false",
    "hydra/job_logging=disabled",
    "phases.finetune.epochs=1",
    "phases.finetune.freeze_epochs=0",
    "phases.finetune.max_batches_per_epoch=2",
    "~phases.finetune.tasks.challenge2",
]


@pytest.fixture(scope="session")
def sweep_data(tmp_path_factory) -> tuple[Path, Path]:
    """A tiny generated HBN dataset and a preprocessing cache shared by every sweep test."""
    base = tmp_path_factory.mktemp("sweep-data")
    root = generate_hbn(base / "hbn", releases=["R1", "R2"], subjects_per_release=6, fmt="bdf",
                        duration_scale=0.05, ccd_trials_per_run=8, seed=0, progress=False)  # fmt: skip
    return Path(root), base / "cache"


def run_cli(workdir: Path, *overrides: str, data: tuple[Path, Path], multirun: bool = False,
            check: bool = True, env: dict[str, str] | None = None, timeout: int = 300,
            generate: bool = False) -> subprocess.CompletedProcess:  # fmt: skip
    """``python -m eegphase.run`` with the tiny settings in ``workdir`` (its own mlflow.db and optuna.db);
    ``generate``: the run generates the smoke dataset at ``data``'s root if it is not there yet."""
    root, cache = data
    cmd = [sys.executable, "-m", "eegphase.run", *(["-m"] if multirun else []), *TINY,
           f"data.root={root}", *([] if generate else ["~data.generate"]), f"cache_dir={cache}",
           *overrides]  # fmt: skip
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "EEGPHASE_CONF_DIR": str(CONF_DIR), **(env or {})}
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=full_env)
    if check and proc.returncode != 0:
        output = f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{output}")
    return proc
