"""``python -m eegphase.report`` against a real MLflow store: numbers, files, the report run, errors."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from eegphase.report.collect import finetune_curves, load_runs

from .conftest import TASKS, Store, val_losses

METRICS = ("test_nrmse_c1", "test_nrmse_c2", "test_score")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def run_report(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    return subprocess.run(
        [sys.executable, "-m", "eegphase.report", *args], cwd=cwd, env=env, capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def report(pipeline_store: Store, tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """The CLI run once, from an empty folder, with the default output folder experiments/<name>."""
    cwd = tmp_path_factory.mktemp("report-cwd")
    done = run_report(
        cwd,
        "--tracking-uri",
        pipeline_store.uri,
        "--experiment",
        pipeline_store.experiment,
        "--name",
        "smoke",
    )
    assert done.returncode == 0, done.stderr
    return cwd / "experiments" / "smoke", done


def test_report_uses_the_newest_finished_run_per_seed_with_the_stored_values(pipeline_store: Store, report):
    out, _ = report
    runs = pd.read_csv(out / "runs.csv")
    expected_ids = {r.run_id for r in pipeline_store.runs} - set(pipeline_store.superseded)
    assert set(runs["run_id"]) == expected_ids
    assert not set(runs["run_id"]) & set(pipeline_store.failed)
    client = MlflowClient(tracking_uri=pipeline_store.uri)
    stored = {run_id: client.get_run(run_id).data.metrics for run_id in runs["run_id"]}
    for row in runs.itertuples(index=False):
        for metric in METRICS:
            assert getattr(row, metric) == pytest.approx(stored[row.run_id][metric], abs=1e-12)
    table = pd.read_csv(out / "comparison.csv").set_index("config")
    for config, group in runs.groupby("config"):
        for metric in METRICS:
            values = [stored[run_id][metric] for run_id in group["run_id"]]
            assert table.loc[config, f"{metric}_mean"] == pytest.approx(np.mean(values))
            assert table.loc[config, f"{metric}_n"] == len(values)


def test_paired_differences_match_a_hand_computation(report):
    out, _ = report
    table = pd.read_csv(out / "comparison.csv").set_index("config")
    assert list(table.index) == ["baseline", "full", "no_aux"]
    # test_score = 0.3 C1 + 0.7 C2 per seed (conftest): full minus baseline for seeds 0, 1, 2
    baseline = [0.3 * 1.10 + 0.7 * 1.00, 0.3 * 1.20 + 0.7 * 0.98, 0.3 * 1.05 + 0.7 * 1.04]
    full = [0.3 * 1.00 + 0.7 * 0.95, 0.3 * 1.15 + 0.7 * 0.90, 0.3 * 1.02 + 0.7 * 1.01]
    diffs = [f - b for f, b in zip(full, baseline, strict=True)]
    mean = sum(diffs) / 3
    std = math.sqrt(sum((d - mean) ** 2 for d in diffs) / 2)
    half = 4.302653 * std / math.sqrt(3)  # t(0.975, df=2) from a table
    row = table.loc["full"]
    assert row["test_score_diff_n"] == 3
    assert row["test_score_diff_mean"] == pytest.approx(mean)
    assert row["test_score_diff_std"] == pytest.approx(std)
    assert row["test_score_diff_ci_low"] == pytest.approx(mean - half, abs=1e-6)
    assert row["test_score_diff_ci_high"] == pytest.approx(mean + half, abs=1e-6)
    assert row["test_nrmse_c1_diff_mean"] == pytest.approx((-0.10 - 0.05 - 0.03) / 3)
    single = table.loc["no_aux"]
    assert single["test_score_diff_n"] == 1 and math.isnan(single["test_score_diff_ci_low"])
    assert single["test_nrmse_c2_diff_mean"] == pytest.approx(1.10 - 1.00)


def test_files_are_written_and_logged_to_a_report_run(pipeline_store: Store, report):
    out, done = report
    names = ["comparison.md", "comparison.csv", "runs.csv", "metrics.png", "finetune_val_loss.png"]
    for name in names:
        assert (out / name).stat().st_size > 0, name
    for name in ("metrics.png", "finetune_val_loss.png"):
        assert (out / name).read_bytes()[:8] == PNG_MAGIC
    markdown = (out / "comparison.md").read_text()
    assert "| no_aux | 0 |" in markdown and "CI n/a (n=1)" in markdown
    assert "![metrics.png](metrics.png)" in markdown
    assert markdown.split("\n| ")[1].startswith("Config")  # the table itself is also on stdout
    assert "| full | 0 1 2 |" in done.stdout

    client = MlflowClient(tracking_uri=pipeline_store.uri)
    experiment = client.get_experiment_by_name(pipeline_store.experiment)
    reports = client.search_runs([experiment.experiment_id], "tags.`eegphase.phase` = 'report'")
    assert len(reports) == 1
    report_run = reports[0]
    assert report_run.info.status == "FINISHED" and report_run.data.tags["eegphase.report"] == "smoke"
    assert report_run.info.run_id in done.stdout
    assert "viewStateShareKey=eegphase-pipelines" in done.stdout  # the pipeline runs, sorted, in the UI
    logged = {artifact.path for artifact in client.list_artifacts(report_run.info.run_id)}
    assert logged == set(names)


def test_learning_curves_follow_reused_finetune_runs(pipeline_store: Store):
    runs = load_runs(pipeline_store.uri, pipeline_store.experiment)
    curves = finetune_curves(pipeline_store.uri, runs)
    assert set(curves["task"]) == set(TASKS)
    assert len(curves) == len(runs) * len(TASKS) * 3  # every run, the reusing one included, three epochs
    seed2 = curves[(curves["config"] == "full") & (curves["seed"] == 2) & (curves["task"] == "challenge2")]
    score = 0.3 * 1.02 + 0.7 * 1.01
    assert seed2.sort_values("epoch")["val_loss"].tolist() == pytest.approx(val_losses(score, 1))
    assert sorted(seed2["epoch"]) == [1, 2, 3]


def test_unknown_experiment_is_a_clear_error(pipeline_store: Store, tmp_path: Path):
    done = run_report(tmp_path, "--tracking-uri", pipeline_store.uri, "--experiment", "no-such-exp")
    assert done.returncode == 2
    assert "no MLflow experiment 'no-such-exp'" in done.stderr and pipeline_store.experiment in done.stderr
    assert not (tmp_path / "experiments").exists()


def test_csv_columns_are_plain_numbers_a_user_can_sort_by(report):
    out, _ = report
    table = pd.read_csv(out / "comparison.csv").set_index("config")
    text = {"pipeline", "baseline_config", "seeds", "is_baseline"}  # names, the seed list, a flag
    assert all(pd.api.types.is_numeric_dtype(table[c]) for c in set(table.columns) - text), table.dtypes
    # full, seeds 0-2: the mean's 95% t interval, and the fewest test subjects a seed's score rests on
    scores = [0.3 * 1.00 + 0.7 * 0.95, 0.3 * 1.15 + 0.7 * 0.90, 0.3 * 1.02 + 0.7 * 1.01]
    mean, std = float(np.mean(scores)), float(np.std(scores, ddof=1))
    row = table.loc["full"]
    assert row["test_score_ci_low"] == pytest.approx(mean - 4.302653 * std / math.sqrt(3), abs=1e-6)
    assert row["test_score_ci_high"] == pytest.approx(mean + 4.302653 * std / math.sqrt(3), abs=1e-6)
    assert (row["test_subjects_c1"], row["test_subjects_c2"]) == (14, 13)
    assert math.isnan(table.loc["no_aux", "test_score_ci_low"])  # one seed: no interval
    assert list(table.sort_values("test_score_mean").index) == ["full", "baseline", "no_aux"]

    runs = pd.read_csv(out / "runs.csv")
    assert {"test_subjects_c1", "test_subjects_c2"} <= set(runs.columns)
    assert pd.api.types.is_numeric_dtype(runs["test_subjects_c2"])
    assert sorted(runs.loc[runs["pipeline"] == "baseline", "test_subjects_c2"]) == [13, 14, 14]
