"""A tiny generated dataset for the CLI runs (``cli_helpers.run_cli``), and the MLflow runs they leave."""

from __future__ import annotations

from pathlib import Path

import mlflow
import pandas as pd
import pytest

from eegphase.data.synthetic import generate_hbn

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def tiny_hbn(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("pipeline-data") / "hbn"
    generate_hbn(root, releases=["R1", "R2"], subjects_per_release=6, fmt="bdf", duration_scale=0.05,
                 ccd_trials_per_run=8, seed=0, progress=False)  # fmt: skip
    return root


def runs(workdir: Path) -> pd.DataFrame:
    """Every run of the eegphase experiment in ``workdir``'s mlflow.db, newest first."""
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    return mlflow.search_runs(experiment_names=["eegphase"], order_by=["start_time DESC"])
