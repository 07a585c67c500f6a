"""The MLflow experiment is created once, by a Hydra callback, before the jobs of a multirun start."""

from __future__ import annotations

import mlflow
import pytest
from hydra import compose, initialize_config_dir
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from cli_helpers import run_cli
from eegphase.config import CONF_DIR
from eegphase.pipeline.schema import register_schemas
from eegphase.tracking.callbacks import EnsureMlflowExperiment, ensure_experiment_from_config
from eegphase.tracking.mlflow_tracker import Tracker

from .conftest import BASELINE_C1

CALLBACK = "eegphase.tracking.callbacks.EnsureMlflowExperiment"


def test_every_run_selects_the_callback():
    register_schemas()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["+pipeline=baseline"], return_hydra_config=True)
    target = OmegaConf.select(cfg, "hydra.callbacks.ensure_mlflow_experiment._target_")
    assert target == CALLBACK, (
        "conf/config.yaml's defaults need `- override hydra/callbacks: mlflow_experiment`"
    )


def test_multirun_creates_the_experiment_before_any_job(sweep_data, tmp_path):
    # The job fails in the runner before it touches MLflow, so only the callback can have made the store.
    proc = run_cli(tmp_path, *BASELINE_C1, "tracking.experiment=made-before-jobs", "pipeline.phases=[bogus]",
                   **sweep_data, multirun=True, check=False)  # fmt: skip
    assert proc.returncode != 0 and "unknown phase" in proc.stderr
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("made-before-jobs")
    assert experiment is not None
    assert experiment.artifact_location == (tmp_path / "mlartifacts").as_uri()
    assert client.search_runs([experiment.experiment_id]) == []


def test_callback_and_jobs_agree_on_the_experiment(tmp_path):
    config = OmegaConf.create(
        {
            "tracking": {
                "uri": f"sqlite:///{tmp_path / 'm.db'}",
                "experiment": "shared",
                "artifact_location": None,
            }
        }
    )
    EnsureMlflowExperiment().on_multirun_start(config)
    created = MlflowClient(config.tracking.uri).get_experiment_by_name("shared").experiment_id
    assert ensure_experiment_from_config(config) == created
    assert Tracker(config.tracking.uri, "shared").experiment_id == created
    assert len(MlflowClient(config.tracking.uri).search_experiments()) == 2  # "Default" and "shared"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({}, "no `tracking` block"),
        ({"tracking": {"uri": "", "experiment": "x"}}, "tracking.uri is empty"),
        ({"tracking": {"uri": "sqlite:///x.db", "experiment": None}}, "tracking.experiment is empty"),
    ],
)
def test_a_bad_tracking_block_is_named(config, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match=message):
        ensure_experiment_from_config(OmegaConf.create(config))
    assert not (tmp_path / "x.db").exists()
    mlflow.set_tracking_uri(None)
