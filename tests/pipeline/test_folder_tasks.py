"""A user's own folder through the real CLI: the tasks group on real EEG (the shared Mumtaz MDD subset, renamed
to the README's layout), the metrics a researcher reports, and the checks that stop a run before it trains."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from .conftest import ROOT, runs

# six subjects (3 healthy, 3 MDD), eyes closed -> "rest", eyes open -> "task", as README's example names them
SUBJECTS = {
    "sub01": "HS1",
    "sub02": "HS2",
    "sub03": "HS3",
    "sub04": "MDDS1",
    "sub05": "MDDS2",
    "sub06": "MDDS5",
}
PARTICIPANTS = """Subject,mdd,Age,Gender,Group,Empty
sub01,0,31,M,control,
sub02,0,44,F,control,
sub03,0,28,F,control,
sub04,1,52,M,patient,
sub05,1,39,F,patient,
sub06,1,47,M,patient,
"""
DATA = [  # the README's command, quoted as printed there
    "data=folder",
    r"data.subject_pattern='(?P<subject>sub\d+)_'",
    r"data.label_pattern='_(?P<label>rest|task)\.edf$'",
]
SMALL = [  # a quick run: 2 subjects per split, a tiny model, one short epoch
    "model=labram_tiny",
    "split.fractions=[0.34,0.33,0.33]",
    "phases.finetune.epochs=1",
    "phases.finetune.max_batches_per_epoch=2",
    "phases.finetune.max_eval_batches=1",
    "phases.finetune.batch_size=16",
    "progress=false",
    "hydra/job_logging=disabled",
]


@pytest.fixture(scope="module")
def folder(mumtaz_mdd, tmp_path_factory) -> dict[str, Path]:
    """12 real EDF files named sub0N_rest.edf / sub0N_task.edf, a subject table, and one shared cache."""
    root = tmp_path_factory.mktemp("folder-tasks")
    edf = root / "my_eeg"
    edf.mkdir()
    for subject, source in SUBJECTS.items():
        shutil.copy(mumtaz_mdd / "edf" / f"{source}EC.edf", edf / f"{subject}_rest.edf")
        shutil.copy(mumtaz_mdd / "edf" / f"{source}EO.edf", edf / f"{subject}_task.edf")
    (root / "subjects.csv").write_text(PARTICIPANTS)
    return {"root": edf, "subjects": root / "subjects.csv", "cache": root / "cache"}


def run(workdir: Path, folder: dict[str, Path], *overrides: str) -> subprocess.CompletedProcess:
    """``python -m eegphase.run`` on the folder, in ``workdir`` (its own mlflow.db and outputs)."""
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "eegphase.run", *DATA, f"data.root={folder['root']}",
           f"data.subjects_file={folder['subjects']}", f"cache_dir={folder['cache']}", "n_jobs=2", *SMALL,
           *overrides]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "EEGPHASE_CONF_DIR": str(ROOT / "conf")}
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=900, env=env)


def finished(proc: subprocess.CompletedProcess) -> None:
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"


def phase_runs(workdir: Path) -> pd.DataFrame:
    return runs(workdir) if (workdir / "mlflow.db").exists() else pd.DataFrame()


def test_recording_label_task_trains_and_reports_against_trivial_and_reference(folder, tmp_path):
    proc = run(tmp_path, folder, "+pipeline=baseline", "tasks=recording_label")
    finished(proc)
    # the windows table carries the label as integer classes, the names beside them, and the subject columns
    windows = pd.read_parquet(folder["cache"] / "windows-pretrain.parquet")
    names = dict(windows[["label", "label_name"]].drop_duplicates().itertuples(index=False))
    assert names == {0.0: "rest", 1.0: "task"}
    recordings = pd.read_parquet(folder["cache"] / "recordings.parquet").set_index("key")
    from_file = windows["key"].map(recordings["path"]).str.extract(r"_(rest|task)\.edf$")[0]
    assert (windows["label_name"] == from_file).all() and windows["label"].notna().all()
    by_subject = windows.drop_duplicates("subject").set_index("subject")
    assert by_subject["age"].to_dict() == {"sub01": 31, "sub02": 44, "sub03": 28, "sub04": 52, "sub05": 39,
                                           "sub06": 47}  # fmt: skip
    assert by_subject["sex"].to_dict()["sub02"] == 1.0  # 'Gender' read as sex (F -> 1)
    assert by_subject["mdd"].to_dict()["sub04"] == 1.0
    assert by_subject[["Group", "Group_name"]].loc["sub05"].tolist() == [1.0, "patient"]

    table = phase_runs(tmp_path)
    parent = table[table["tags.eegphase.phase"] == "pipeline"].iloc[0]
    metrics = {k[len("metrics.") :]: v for k, v in parent.items() if k.startswith("metrics.") and pd.notna(v)}
    for split in ("val", "test"):
        for name in ("balanced_accuracy_label", "balanced_accuracy_label_recording", "auroc_label",
                     "balanced_accuracy_label_trivial", "predicted_class_share_label"):  # fmt: skip
            assert 0.0 <= metrics[f"{split}_{name}"] <= 1.0, (split, name, sorted(metrics))
        assert metrics[f"{split}_balanced_accuracy_label_trivial"] == 0.5  # the majority class, 2 classes
        assert metrics[f"{split}_predicted_class_share_label"] >= 0.5
        # a subject holds both labels: no subject-level accuracy is reported for a recording label
        assert f"{split}_balanced_accuracy_label_subject" not in metrics
    assert 0.0 <= metrics["test_balanced_accuracy_label_reference"] <= 1.0
    assert "test_nrmse_c1" not in metrics and "test_score" not in metrics

    finetune = table[table["tags.eegphase.phase"] == "finetune"].iloc[0]
    assert finetune["metrics.label_class_weight_0"] == pytest.approx(1.0, abs=0.05)  # classes nearly balanced
    classes = mlflow.artifacts.download_artifacts(
        artifact_uri=f"runs:/{finetune['run_id']}/classes/label/classes.json", dst_path=str(tmp_path / "dl")
    )
    assert json.loads(Path(classes).read_text()) == {"0": "rest", "1": "task"}


def test_subject_column_task_predicts_a_column_of_the_subject_table(folder, tmp_path):
    proc = run(tmp_path, folder, "+pipeline=baseline", "tasks=subject_column", "tasks.column=Age",
               "tasks.kind=regression")  # fmt: skip
    finished(proc)
    table = phase_runs(tmp_path)
    parent = table[table["tags.eegphase.phase"] == "pipeline"].iloc[0]
    for name in ("test_nrmse_age", "test_nrmse_age_subject", "test_nrmse_age_trivial", "test_nrmse_age_reference",
                 "val_nrmse_age", "val_nrmse_age_subject"):  # fmt: skip
        value = parent[f"metrics.{name}"]
        assert pd.notna(value) and value > 0, name
    assert parent["metrics.test_nrmse_age_trivial"] == pytest.approx(
        _train_mean_nrmse(folder["cache"], "test"), rel=1e-6
    )
    assert "test_nrmse_age" in proc.stdout


def _train_mean_nrmse(cache: Path, split: str) -> float:
    """NRMSE of predicting the training windows' mean age on a split, from the windows table itself."""
    windows = pd.read_parquet(cache / "windows-pretrain.parquet")
    train_mean = windows.loc[windows["split"] == "train", "age"].mean()
    ages = windows.loc[windows["split"] == split, "age"]
    return float((((ages - train_mean) ** 2).mean()) ** 0.5 / ages.std(ddof=0))


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        (["+pipeline=full", "tasks=recording_label"], ["contrastive=none", "+pipeline=no_contrastive"]),
        (["+pipeline=baseline"], ["task 'challenge1' reads mode 'challenge1'", "tasks=recording_label"]),
        (["+pipeline=baseline", "tasks=subject_column", "tasks.column=Empty"],
         ["target column 'Empty' holds no values"]),
        (["+pipeline=baseline", "tasks=recording_label", "split.fractions=[0.5,0,0.5]"],
         ["task 'label'", "no windows with a value of 'label' in the val split"]),
    ],
    ids=["contrastive-without-movies", "challenge-task-on-folder", "empty-target", "empty-split"],
)  # fmt: skip
def test_a_run_that_cannot_work_stops_before_training_by_name(folder, tmp_path, overrides, named):
    proc = run(tmp_path, folder, *overrides)
    assert proc.returncode != 0
    for text in named:
        assert text in proc.stderr, f"{text!r} not in:\n{proc.stderr[-3000:]}"
    assert phase_runs(tmp_path).empty  # no pipeline or phase run was ever created
    assert not list(tmp_path.glob("outputs/phases/finetune-*"))


@pytest.mark.slow  # a whole (smoke) pipeline on the real folder
def test_smoke_shrinks_a_run_on_the_users_folder(folder, tmp_path):
    """debug=smoke on a folder (it refused to run before): the user's recordings, the smoke's shrink."""
    proc = run(tmp_path, folder, "+pipeline=baseline", "tasks=recording_label", "debug=smoke")
    finished(proc)
    assert not (tmp_path / "data").exists()  # no generated dataset in place of the folder
    assert list(tmp_path.glob("outputs/smoke-phases/finetune-*"))  # the smoke's work_dir
    parent = phase_runs(tmp_path).query("`tags.eegphase.phase` == 'pipeline'").iloc[0]
    assert parent["status"] == "FINISHED" and 0.0 <= parent["metrics.test_balanced_accuracy_label"] <= 1.0


def test_a_sweep_minimises_the_tasks_own_scores_not_their_companions():
    from eegphase.run import objective

    assert (
        objective({"val_nrmse_age": 0.9, "val_nrmse_age_trivial": 1.0, "val_nrmse_age_subject": 2.0}) == 0.9
    )
    label = {"val_balanced_accuracy_label": 0.7, "val_balanced_accuracy_label_trivial": 0.5}
    assert objective(label) == pytest.approx(0.3)
    assert objective({"val_score": 1.2, "val_nrmse_c1": 0.5}) == 1.2
    readout = {"val_nrmse_c1": 0.8, "val_nrmse_c1_trained_head": 0.9, "val_nrmse_c1_refit_head": 0.8}
    assert objective(readout) == 0.8  # readout=refit's comparison is no score of its own
