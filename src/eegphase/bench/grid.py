"""``python -m eegphase.bench grid``: the ablation grid with phase reuse against the same grid without it.

Both grids are ``python -m eegphase.run -m experiment=ablation debug=smoke`` (the grid of
conf/experiment/ablation.yaml, each run shrunk by conf/debug/smoke.yaml), real subprocesses, each in a fresh
folder with its own MLflow store; each generates the smoke dataset and prepares its cache there (the same
work in both, inside the timing). Extra arguments are overrides for both grids, e.g. ablation's cheap switch
``seed_all_phases=false split.seed=0``, under which upstream phases train once for all seeds. The metrics of
every cell must be identical with and without reuse.
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

GRID = ["experiment=ablation", "debug=smoke", "progress=false", "hydra/job_logging=disabled"]
METRICS = ("test_nrmse_c1", "test_nrmse_c2", "test_score")


def grid_cells(*overrides: str) -> int:
    """How many jobs the composed grid sweeps (the product of ``hydra.sweeper.params``' choices)."""
    from hydra import compose, initialize_config_dir

    from eegphase.pipeline.schema import register_schemas

    register_schemas()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=[*GRID, *overrides], return_hydra_config=True)
    return math.prod(len(str(choices).split(",")) for choices in cfg.hydra.sweeper.params.values())


def run_grid(folder: Path, reuse: bool, overrides: list[str]) -> float:
    """Wall seconds of one ablation multirun in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "eegphase.run", "-m", *GRID, f"reuse={str(reuse).lower()}", *overrides]
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
    parser.add_argument(
        "overrides", nargs="*", help="config overrides for both grids, e.g. seed_all_phases=false"
    )
    args = parser.parse_args(argv)
    cells = grid_cells(*args.overrides)
    work = Path(args.workdir or tempfile.mkdtemp(prefix="eegphase-grid-"))
    with_reuse, without = work / "with-reuse", work / "without-reuse"
    for folder in (with_reuse, without):
        shutil.rmtree(folder, ignore_errors=True)
    seconds_without = run_grid(without, reuse=False, overrides=args.overrides)
    seconds_with = run_grid(with_reuse, reuse=True, overrides=args.overrides)
    a, b = cell_metrics(with_reuse), cell_metrics(without)
    identical = (
        len(a) == cells
        and a.keys() == b.keys()
        and all(
            a[k][m] == b[k][m] or (math.isnan(a[k][m]) and math.isnan(b[k][m])) for k in a for m in METRICS
        )
    )
    results = {
        "grid_cells": len(a),
        "grid_overrides": " ".join([*GRID, *args.overrides]),
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
    print(f"ablation grid: {len(a)} of {cells} cells ({results['grid_overrides']})")
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
