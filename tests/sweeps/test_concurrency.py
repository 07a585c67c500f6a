"""Parallel processes on one fresh folder: one MLflow store, one generated dataset, one cache, nothing lost."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import mlflow
from mlflow.tracking import MlflowClient

from cli_helpers import run_cli
from eegphase.config import CONF_DIR

from .conftest import BASELINE_C1

# Opens the project's tracker on a new store the moment the test says "go" (after every process has
# imported MLflow, so that they really start together).
OPEN_TRACKER = """
import os, sys, time
from pathlib import Path
from eegphase.tracking.mlflow_tracker import Tracker
(Path.cwd() / f"ready-{os.getpid()}").touch()
while not (Path.cwd() / "go").exists():
    time.sleep(0.002)
Tracker("sqlite:///mlflow.db", "eegphase")
"""


def test_processes_opening_a_new_store_at_once_all_succeed(tmp_path):
    # Unguarded, three processes creating one SQLite store at once fail (`table ... already exists`,
    # `duplicate column name`) in nearly every round, sometimes leaving a database no one can open.
    env = {**os.environ, "EEGPHASE_CONF_DIR": str(CONF_DIR)}
    for attempt in range(2):
        folder = tmp_path / f"round{attempt}"
        folder.mkdir()
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", OPEN_TRACKER],
                cwd=folder,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )  # fmt: skip
            for _ in range(3)
        ]
        try:
            while len(list(folder.glob("ready-*"))) < len(procs) and all(p.poll() is None for p in procs):
                time.sleep(0.05)
            (folder / "go").touch()
            outputs = [p.communicate(timeout=180)[0] for p in procs]
        finally:
            for p in procs:
                p.kill()
        failed = [out for p, out in zip(procs, outputs, strict=True) if p.returncode != 0]
        assert not failed, f"round {attempt}: {len(failed)} of 3 failed:\n" + failed[0][-3000:]
        client = MlflowClient(f"sqlite:///{folder / 'mlflow.db'}")
        assert client.get_experiment_by_name("eegphase") is not None
        assert sorted(e.name for e in client.search_experiments()) == ["Default", "eegphase"]


def test_a_parallel_sweep_in_a_fresh_folder_loses_no_job(tmp_path):
    # Every job of a joblib sweep finds no dataset and no cache: they must not generate and prepare them
    # over each other (one job used to fail with FileNotFoundError on a .bdf another job was replacing).
    root = tmp_path / "data" / "synthetic-smoke"
    run_cli(tmp_path, *BASELINE_C1, "hydra/launcher=joblib", "hydra.launcher.n_jobs=3", "seed=0,1,2",
            data_root=root, cache_dir=tmp_path / "cache", multirun=True, generate=True, timeout=900)  # fmt: skip
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    frame = mlflow.search_runs(experiment_names=["eegphase"])
    parents = frame[frame["tags.eegphase.phase"] == "pipeline"]
    assert sorted(parents["params.seed"]) == ["0", "1", "2"]
    assert (
        len(frame) == 6 and (frame["status"] == "FINISHED").all()
    )  # each job: a pipeline and a finetune run
    assert (root / ".complete").exists()
