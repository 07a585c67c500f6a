"""The contrastive phase on a dataset without movies, through the real CLI on real EEG (a copy of six subjects
of the shared Mumtaz MDD subset, eyes closed and eyes open): contrastive=same_label trains after pretraining,
and the default movie pairs stop the pipeline before any training, naming what to run instead."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from .conftest import ROOT, runs

SUBJECTS = {"HS1": 0, "HS2": 0, "HS3": 0, "MDDS1": 1, "MDDS2": 1, "MDDS5": 1}
DATA = [
    "data=folder",
    r"data.subject_pattern='(?P<subject>(H|MDD)S\d+)(EC|EO)'",
    r"data.label_pattern='(?P<label>EC|EO)\.edf$'",
    "tasks=recording_label",
]
SMALL = [  # 2 subjects per split, a tiny model, a few batches per phase
    "model=labram_tiny",
    "aux_task=none",
    "split.fractions=[0.34,0.33,0.33]",
    "phases.pretrain.epochs=1",
    "phases.pretrain.tokenizer_epochs=1",
    "phases.pretrain.n_codes=64",
    "phases.pretrain.batch_size=16",
    "phases.pretrain.max_batches_per_epoch=2",
    "phases.pretrain.max_eval_batches=1",
    "phases.contrastive.epochs=1",
    # two subjects per split and two labels: a batch of distinct recordings whose positives are on none of the
    # other anchors' recordings holds two pairs
    "phases.contrastive.batch_size=2",
    "phases.contrastive.max_batches_per_epoch=3",
    "phases.contrastive.max_eval_batches=1",
    "phases.finetune.epochs=1",
    "phases.finetune.freeze_epochs=0",
    "phases.finetune.batch_size=16",
    "phases.finetune.max_batches_per_epoch=2",
    "phases.finetune.max_eval_batches=1",
    "phases.finetune.reference=false",
    "progress=false",
    "hydra/job_logging=disabled",
    "n_jobs=1",
]


@pytest.fixture(scope="module")
def folder(mumtaz_mdd, tmp_path_factory) -> dict[str, Path]:
    """12 real EDF files (6 subjects x EC/EO) under their original names, a subject table, one shared cache."""
    root = tmp_path_factory.mktemp("no-movies")
    edf = root / "edf"
    edf.mkdir()
    for subject in SUBJECTS:
        for condition in ("EC", "EO"):
            shutil.copy(mumtaz_mdd / "edf" / f"{subject}{condition}.edf", edf / f"{subject}{condition}.edf")
    rows = "".join(f"{s},{m}\n" for s, m in SUBJECTS.items())
    (root / "subjects.csv").write_text("subject,mdd\n" + rows)
    return {"root": edf, "subjects": root / "subjects.csv", "cache": root / "cache"}


def run(workdir: Path, folder: dict[str, Path], *overrides: str) -> subprocess.CompletedProcess:
    workdir.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "eegphase.run", *DATA, f"data.root={folder['root']}",
           f"data.subjects_file={folder['subjects']}", f"cache_dir={folder['cache']}", *SMALL, *overrides]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "EEGPHASE_CONF_DIR": str(ROOT / "conf")}
    return subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=900, env=env)


def test_full_pipeline_with_same_label_pairs_trains_contrastive_after_pretraining(folder, tmp_path):
    proc = run(tmp_path, folder, "+pipeline=full", "contrastive=same_label")
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    table = runs(tmp_path)
    phases = table[table["tags.eegphase.phase"] != "pipeline"].set_index("tags.eegphase.phase")
    assert set(phases.index) == {"pretrain", "contrastive", "finetune"}
    assert (table["status"] == "FINISHED").all()
    parent = table[table["tags.eegphase.phase"] == "pipeline"].iloc[0]
    assert parent["params.contrastive.pair_mode"] == "same_label"
    contrastive = phases.loc["contrastive"]
    for key in ("train/loss", "val/loss", "train/pos_similarity", "train/accuracy"):
        value = contrastive[f"metrics.{key}"]
        assert pd.notna(value), key
    assert contrastive["metrics.train/loss"] > 0
    # the contrastive weights are what fine-tuning started from
    assert phases.loc["finetune", "tags.eegphase.init_from"].startswith(f"runs:/{contrastive['run_id']}/")


@pytest.mark.parametrize(
    "overrides",
    [["+pipeline=full"], ["+pipeline=full", "data.modes=[pretrain,movies]"]],
    ids=["data-modes-without-movies", "movies-table-empty"],
)
def test_default_movie_pairs_on_data_without_movies_stop_before_training(folder, tmp_path, overrides):
    proc = run(tmp_path, folder, *overrides)
    assert proc.returncode != 0
    for text in ("no movie windows", "contrastive=same_label", "contrastive=same_recording"):
        assert text in proc.stderr, f"{text!r} not in:\n{proc.stderr[-3000:]}"
    assert not (tmp_path / "mlflow.db").exists() or runs(tmp_path).empty  # no pipeline or phase run
    assert not list(tmp_path.glob("outputs/phases/pretrain-*"))
