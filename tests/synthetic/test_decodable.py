"""The planted targets are decodable by a simple reference (band-power ridge), and not trivially so."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import mlflow
import mne
import pytest
from omegaconf import OmegaConf

from eegphase import synth
from eegphase.data.prepare_cache import prepare
from eegphase.data.splits import SplitConfig
from eegphase.objectives.reference import reference_scores

ROOT = Path(__file__).resolve().parents[2]


def _prepare(root: Path, cache: Path, split: SplitConfig) -> None:
    mne.set_log_level("ERROR")
    data = {"name": "hbn", "sources": {"hbn": {"kind": "hbn", "root": str(root)}}}
    prepare(data, cache, split_cfg=split, modes=["challenge1", "challenge2"], n_jobs=2, progress=False)


def _check(cache: Path, split: SplitConfig, min_test_subjects: int) -> dict[str, dict[str, float]]:
    # Subject-level effects need many training subjects: at 40 subjects the ridge does not generalise yet
    # (C1 ~1.1, C2 ~1.1 on a 60/20/20 split), so this runs at the default size (~4 min on 2 cores).
    scores = {mode: reference_scores(cache, mode, split_cfg=split) for mode in ("challenge1", "challenge2")}
    for mode, result in scores.items():
        assert result["n_test_subjects"] >= min_test_subjects, (mode, result)
        assert 0.3 < result["test_nrmse"] < 0.95, (mode, result)  # learnable, far from an oracle
        assert result["mean_nrmse"] >= 0.99, (mode, result)  # predicting the train mean is no better than 1
    return scores


@pytest.fixture(scope="module")
def default_data(tmp_path_factory) -> tuple[Path, Path, SplitConfig]:
    """What `make run` generates (conf/synth.yaml), prepared with the default split."""
    tmp_path = tmp_path_factory.mktemp("default-data")
    cfg = OmegaConf.load(ROOT / "conf" / "synth.yaml")
    cfg.out, cfg.progress = str(tmp_path / "hbn"), False
    root = synth.run(cfg)
    split = SplitConfig.from_mapping(OmegaConf.load(ROOT / "conf" / "split" / "default.yaml"))
    _prepare(root, tmp_path / "cache", split)
    return root, tmp_path / "cache", split


@pytest.mark.slow
def test_reference_decodes_the_default_dataset(default_data) -> None:
    """With the default split: at least 12 test subjects each."""
    _, cache, split = default_data
    _check(cache, split, min_test_subjects=12)


@pytest.mark.slow
def test_make_run_baseline_beats_the_mean_predictor_on_both_challenges(default_data, tmp_path: Path) -> None:
    """`make run`'s baseline at its default budget, through the real CLI: below the training mean's test NRMSE
    on challenge 1 and on challenge 2 (measured at seed 0: 0.970 / 0.972 against 1.029 / 1.023)."""
    root, cache, _ = default_data
    cmd = [sys.executable, "-m", "eegphase.run", "+pipeline=baseline", f"data.root={root}",
           f"cache_dir={cache}", "progress=false", "hydra/job_logging=disabled"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=1800, env=env)
    assert proc.returncode == 0, proc.stderr[-5000:]
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = mlflow.search_runs(search_all_experiments=True, filter_string="tags.`eegphase.phase` = 'finetune'")
    assert len(runs) == 1
    metrics = runs.iloc[0]
    for c in ("c1", "c2"):
        score, trivial = metrics[f"metrics.test_nrmse_{c}"], metrics[f"metrics.test_nrmse_{c}_trivial"]
        assert metrics[f"metrics.test_subjects_{c}"] >= 12
        assert score < trivial - 0.01, (c, score, trivial)
