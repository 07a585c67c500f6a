"""``python -m eegphase.bench grid``: the ablation grid with phase reuse against the same grid without it.

Both grids run the ablation grid of ``experiment=ablation`` (4 pipelines x 3 seeds) as real ``python -m
eegphase.run -m`` subprocesses,
on one tiny generated dataset and one shared, pre-built cache, each in a fresh folder with its own MLflow
store. Phase lengths keep the proportions of real use (pretraining costs several times a fine-tuning).
Reuse trains 2 pretrain and 2 contrastive phases where no reuse trains 9 and 6; the metrics of every cell
must be identical.
"""

from __future__ import annotations

import argparse
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import mlflow

from eegphase.bench import write_results
from eegphase.config import CONF_DIR
from eegphase.data.prepare_cache import prepare
from eegphase.data.synthetic import generate_hbn

# Real-use proportions on a CPU budget: pretraining ~ several fine-tunings, contrastive in between.
GRID = [
    "experiment=smoke",
    "progress=false",
    "hydra/job_logging=disabled",
    "phases.pretrain.tokenizer_epochs=1",
    "phases.pretrain.epochs=4",
    "phases.pretrain.max_batches_per_epoch=8",
    "phases.contrastive.epochs=2",
    "phases.contrastive.max_batches_per_epoch=4",
    "phases.finetune.epochs=2",
    "phases.finetune.max_batches_per_epoch=3",
]
METRICS = ("test_nrmse_c1", "test_nrmse_c2", "test_score")
ABLATION_PIPELINES = "+pipeline=full,no_contrastive,no_aux,baseline"  # as conf/experiment/ablation.yaml
ABLATION_SEEDS = "seed=0,1,2"


def run_grid(folder: Path, data_root: Path, cache_dir: Path, reuse: bool) -> float:
    """Wall seconds of one ablation multirun in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    # experiment=ablation's grid, spelled out: the smoke experiment (tiny data and model) takes the experiment slot
    cmd = [sys.executable, "-m", "eegphase.run", "-m", ABLATION_PIPELINES, ABLATION_SEEDS, *GRID,
           f"data.root={data_root}", "~data.generate", f"cache_dir={cache_dir}",
           f"reuse={str(reuse).lower()}"]  # fmt: skip
    env = {**os.environ, "EEGPHASE_CONF_DIR": str(CONF_DIR), "PYTHONUNBUFFERED": "1"}
    started = time.perf_counter()
    proc = subprocess.run(cmd, cwd=folder, capture_output=True, text=True, env=env)
    seconds = time.perf_counter() - started
    if proc.returncode != 0:
        raise RuntimeError(f"grid (reuse={reuse}) failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return seconds


def cell_metrics(folder: Path) -> dict[tuple[str, str], dict[str, float]]:
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    runs = mlflow.search_runs(
        experiment_names=["eegphase"], filter_string="tags.`eegphase.phase` = 'pipeline'"
    )
    return {
        (row["tags.eegphase.pipeline"], row["params.seed"]): {m: row[f"metrics.{m}"] for m in METRICS}
        for _, row in runs.iterrows()
    }


def trained_phases(folder: Path) -> dict[str, int]:
    mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
    runs = mlflow.search_runs(experiment_names=["eegphase"], filter_string="tags.`eegphase.reused` = 'false'")
    return runs["tags.eegphase.phase"].value_counts().to_dict()


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m eegphase.bench grid")
    parser.add_argument(
        "--workdir", type=Path, default=None, help="keep everything here instead of a temp folder"
    )
    args = parser.parse_args(argv)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="eegphase-grid-"))
    data = work / "hbn"
    if not (data / ".complete").exists():
        generate_hbn(data, releases=["R1", "R2"], subjects_per_release=6, fmt="bdf", duration_scale=0.05,
                     ccd_trials_per_run=8, seed=0, progress=False)  # fmt: skip
    cache = work / "cache"
    # build the cache once, untimed: both grids then only train
    prepare(
        {"sources": {"hbn": {"kind": "hbn", "root": str(data)}}}, cache, modes=["pretrain"], progress=False
    )
    with_reuse, without = work / "with-reuse", work / "without-reuse"
    for folder in (with_reuse, without):
        shutil.rmtree(folder, ignore_errors=True)
    seconds_without = run_grid(without, data, cache, reuse=False)
    seconds_with = run_grid(with_reuse, data, cache, reuse=True)
    a, b = cell_metrics(with_reuse), cell_metrics(without)
    identical = (
        len(a) == 12
        and a.keys() == b.keys()
        and all(
            a[k][m] == b[k][m] or (math.isnan(a[k][m]) and math.isnan(b[k][m])) for k in a for m in METRICS
        )
    )
    results = {
        "grid_cells": len(a),
        "grid_seconds_with_reuse": seconds_with,
        "grid_seconds_without_reuse": seconds_without,
        "grid_reuse_time_ratio": seconds_with / seconds_without,
        "grid_metrics_identical": bool(identical),
        "phases_trained_with_reuse": ", ".join(
            f"{k}={v}" for k, v in sorted(trained_phases(with_reuse).items())
        ),
        "phases_trained_without_reuse": ", ".join(
            f"{k}={v}" for k, v in sorted(trained_phases(without).items())
        ),
    }
    print(f"ablation grid: {len(a)} cells (4 pipelines x 3 seeds)")
    print(f"{'measurement':<40}{'value':>14}")
    print(f"{'wall s, reuse disabled':<40}{seconds_without:>14.1f}")
    print(f"{'wall s, reuse':<40}{seconds_with:>14.1f}")
    print(f"{'  grid_reuse_time_ratio':<40}{results['grid_reuse_time_ratio']:>14.3f}")
    print(f"{'  grid_metrics_identical':<40}{str(identical):>14}")
    print(f"trained with reuse:    {results['phases_trained_with_reuse']}")
    print(f"trained without reuse: {results['phases_trained_without_reuse']}")
    print(f"wrote {write_results('grid', results)}")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return results


if __name__ == "__main__":
    main()
