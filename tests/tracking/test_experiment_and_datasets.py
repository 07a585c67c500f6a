"""What a user sees in MLflow's UI: an experiment marked as model training, and each phase's windows tables
listed as its run's datasets (real SQLite store, real prepared cache)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap

import pytest
import torch
from mlflow.tracking import MlflowClient
from omegaconf import OmegaConf

from eegphase.phases.common import PhaseContext, dataset
from eegphase.pipeline.runner import log_windows
from eegphase.tracking.mlflow_tracker import (
    EXPERIMENT_KIND,
    PIPELINES_VIEW,
    TAG_EXPERIMENT_KIND,
    TAG_SHARED_VIEW,
    Tracker,
    ui_link,
)

from .conftest import wait_until_ready


def test_new_experiment_opens_on_model_training_with_a_view_of_its_pipelines(tmp_path):
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "eegphase")
    experiment = tracker.client.get_experiment(tracker.experiment_id)
    assert experiment.tags[TAG_EXPERIMENT_KIND] == EXPERIMENT_KIND == "custom_model_development"
    # what the UI's runs table shows through the experiment's link (rendered in chromium: test_mlflow_ui.py)
    view = json.loads(experiment.tags[TAG_SHARED_VIEW + PIPELINES_VIEW])
    assert view["searchFilter"] == "tags.`eegphase.phase` = 'pipeline'"
    assert (view["orderByKey"], view["orderByAsc"]) == ("metrics.`test_score`", True)
    assert {"metrics.`test_score`", "metrics.`test_nrmse_c1`", "metrics.`test_nrmse_c2`"} <= set(
        view["selectedColumns"]
    )


def test_ui_links_open_the_model_training_view():
    """MLflow 3.17's UI ignores the tag when it picks its view: the link names it (checked in headless
    chromium: without the parameter the experiment opens on the GenAI overview, with it on Runs)."""
    assert ui_link("sqlite:///mlflow.db", "1") == (
        "http://127.0.0.1:5000/#/experiments/1/runs?viewStateShareKey=eegphase-pipelines"
        "&workflowType=machine_learning"
    )
    assert ui_link("http://mlflow-host:5000/", "3", "ab" * 16) == (
        f"http://mlflow-host:5000/#/experiments/3/runs/{'ab' * 16}?workflowType=machine_learning"
    )


def test_older_experiment_gets_the_kind_and_a_users_choice_stays(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    client = MlflowClient(uri)
    older = client.create_experiment("older")
    chosen = client.create_experiment("chosen", tags={TAG_EXPERIMENT_KIND: "genai_development"})
    assert Tracker(uri, "older").experiment_id == older
    assert Tracker(uri, "chosen").experiment_id == chosen
    assert client.get_experiment(older).tags[TAG_EXPERIMENT_KIND] == EXPERIMENT_KIND
    assert client.get_experiment(chosen).tags[TAG_EXPERIMENT_KIND] == "genai_development"
    assert TAG_SHARED_VIEW + PIPELINES_VIEW in client.get_experiment(older).tags


@pytest.mark.filterwarnings("error::UserWarning")  # no model-schema hints about a table's integer columns
def test_phase_windows_tables_are_the_runs_datasets(tmp_path, challenge1_cache):
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "eegphase")
    cfg = OmegaConf.create({"cache_dir": str(challenge1_cache), "split": {}, "input_scale": 1.0})
    with tracker.run("finetune", {}) as run_id:
        ctx = PhaseContext(
            cfg=cfg,
            name="finetune",
            seed=0,
            work_dir=tmp_path,
            init_from=None,
            device=torch.device("cpu"),
            log_dataset=lambda data, mode, split: log_windows(tracker, run_id, cfg, data, mode, split),
        )
        splits = {split: dataset(ctx, "challenge1", split) for split in ("train", "val", "test")}

    inputs = tracker.client.get_run(run_id).inputs.dataset_inputs
    logged = {i.dataset.name: i for i in inputs}
    assert sorted(logged) == ["challenge1-test", "challenge1-train", "challenge1-val"]
    contexts = {name: {t.key: t.value for t in i.tags}["mlflow.data.context"] for name, i in logged.items()}
    assert contexts == {
        "challenge1-train": "training",
        "challenge1-val": "validation",
        "challenge1-test": "testing",
    }
    table = (challenge1_cache / "windows-challenge1.parquet").resolve()
    for split, data in splits.items():
        entity = logged[f"challenge1-{split}"].dataset
        assert entity.source_type == "local" and json.loads(entity.source)["uri"] == str(table)
        # the windows table (its digest, schema and row count), not the EEG
        assert json.loads(entity.profile)["num_rows"] == len(data.windows) > 0
        columns = [column["name"] for column in json.loads(entity.schema)["mlflow_colspec"]]
        assert columns == list(data.windows.columns)
    assert len({i.dataset.digest for i in inputs}) == 3  # three different tables


LOG_DATASETS = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import pandas as pd
    from eegphase.tracking.mlflow_tracker import Tracker
    uri, gate, ready, n = sys.argv[1:]
    tracker = Tracker(uri, "eegphase")
    table = pd.DataFrame({"subject": ["a", "b"], "start": [0, 1]})
    with tracker.run("finetune", {}) as run_id:
        Path(ready).write_text(run_id)
        while not Path(gate).exists():
            time.sleep(0.005)
        for i in range(int(n)):
            tracker.log_dataset(run_id, table, f"windows-{i}", "training", "/data/windows.parquet")
    """
)


@pytest.mark.slow  # four processes start python, mlflow and sqlalchemy at once: tens of seconds on 2 cores
def test_processes_logging_the_same_table_at_once_each_list_it(tmp_path):
    """Parallel pipelines of one sweep log the same windows tables: MLflow looks a dataset up, then inserts it,
    so two processes at once both insert and one fails on the unique (experiment, name, digest). Each run must
    list every table, and the experiment hold each table once."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    tracker = Tracker(uri, "eegphase")  # the store and experiment, created once (as before a sweep)
    gate, n_tables = tmp_path / "go", 40
    procs = []
    for worker in range(4):
        ready = tmp_path / f"ready{worker}"
        command = [sys.executable, "-c", LOG_DATASETS, uri, str(gate), str(ready), str(n_tables)]
        procs.append((ready, subprocess.Popen(command, stderr=subprocess.PIPE)))
    wait_until_ready(procs)
    gate.touch()  # all four log at the same moment
    for _, proc in procs:
        assert proc.wait(timeout=300) == 0, proc.stderr.read().decode()[-3000:]

    expected = [f"windows-{i}" for i in range(n_tables)]
    for ready, _ in procs:
        inputs = tracker.client.get_run(ready.read_text()).inputs.dataset_inputs
        assert sorted(i.dataset.name for i in inputs) == sorted(expected)
    with sqlite3.connect(tmp_path / "mlflow.db") as db:
        assert db.execute("SELECT COUNT(*) FROM datasets").fetchone()[0] == n_tables
