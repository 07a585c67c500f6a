"""Run the real CLI (``python -m eegphase.run``) in a scratch folder on a tiny generated dataset."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from eegphase.data.synthetic import generate_hbn

ROOT = Path(__file__).resolve().parents[2]

# experiment=smoke, shrunk further: every phase a few batches.
TINY = [
    "experiment=smoke",
    "progress=false",
    "hydra/job_logging=disabled",
    "phases.pretrain.max_batches_per_epoch=2",
    "phases.contrastive.max_batches_per_epoch=2",
    "phases.finetune.max_batches_per_epoch=3",
]


@pytest.fixture(scope="session")
def tiny_hbn(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pipeline-data") / "hbn"
    generate_hbn(root, releases=["R1", "R2"], subjects_per_release=6, fmt="bdf", duration_scale=0.05,
                 ccd_trials_per_run=8, seed=0, progress=False)  # fmt: skip
    return root


def torchrun(nproc: int) -> list[str]:
    """``torchrun --standalone --nproc_per_node=<nproc>`` of this interpreter's environment."""
    exe = Path(sys.executable).with_name("torchrun")
    return [str(exe) if exe.exists() else "torchrun", "--standalone", f"--nproc_per_node={nproc}"]


def run_cli(workdir: Path, *overrides: str, data_root: Path, check: bool = True, timeout: int = 600,
            multirun: bool = False, nproc: int | None = None) -> subprocess.CompletedProcess:  # fmt: skip
    """``python -m eegphase.run`` (or ``torchrun --nproc_per_node=<nproc> -m eegphase.run``) with the tiny
    settings, its data at ``data_root``, in ``workdir``."""
    launcher = [sys.executable] if nproc is None else torchrun(nproc)
    cmd = [*launcher, "-m", "eegphase.run", *(["-m"] if multirun else []), *TINY, f"data.root={data_root}",
           "~data.generate", *overrides]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "EEGPHASE_CONF_DIR": str(ROOT / "conf")}
    if nproc is not None:
        env["OMP_NUM_THREADS"] = "1"  # one thread per rank on a small machine
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=env)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}")
    return proc


def runs(workdir: Path) -> pd.DataFrame:
    """Every run of the eegphase experiment in ``workdir``'s mlflow.db, newest first."""
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    return mlflow.search_runs(experiment_names=["eegphase"], order_by=["start_time DESC"])
