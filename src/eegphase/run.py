"""``python -m eegphase.run +pipeline=full``: run a pipeline (or a ``-m`` sweep of them) and track it in MLflow.

The task function returns the validation score (0.3 * C1 + 0.7 * C2 NRMSE, lower is better) so that the
Optuna sweeper can minimise it; a failed trial is logged and scored with a large finite penalty so that a
search goes on.
"""

from __future__ import annotations

import logging
import math
import signal
import sys
import time

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from eegphase.config import CONF_DIR
from eegphase.engine.distributed import (
    broadcast_from_main,
    cleanup_distributed,
    dist_info,
    init_distributed,
    init_from_submitit,
)
from eegphase.pipeline.runner import run_pipeline
from eegphase.pipeline.schema import register_schemas

log = logging.getLogger("eegphase")
FAILED_TRIAL_SCORE = 1.0e6

register_schemas()


def _terminate(signum, frame):  # SIGTERM (e.g. SLURM preemption) ends runs as KILLED, like Ctrl-C
    raise KeyboardInterrupt(f"signal {signum}")


# logged beside a task's own score (the last two by readout=refit: phases/readout.py)
COMPANION_SUFFIXES = ("_subject", "_recording", "_trivial", "_reference", "_trained_head", "_refit_head")


def objective(metrics: dict[str, float]) -> float:
    """The number a sweep minimises: the validation score, else the mean validation NRMSE of the tasks, else
    1 - their mean validation balanced accuracy (per window; companions such as ``_trivial`` left out)."""
    if "val_score" in metrics:
        return float(metrics["val_score"])
    for prefix, sign, offset in (("val_nrmse_", 1.0, 0.0), ("val_balanced_accuracy_", -1.0, 1.0)):
        values = [
            v for k, v in metrics.items() if k.startswith(prefix) and not k.endswith(COMPANION_SUFFIXES)
        ]
        if values:
            return offset + sign * float(sum(values) / len(values))
    return math.nan


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    signal.signal(signal.SIGTERM, _terminate)
    joined = (
        not dist_info().enabled and init_from_submitit().enabled
    )  # a multi-task submitit job: one DDP run
    hydra_cfg = HydraConfig.get()
    overrides = list(hydra_cfg.overrides.task)
    sweeping = hydra_cfg.mode is not None and hydra_cfg.mode.name == "MULTIRUN"
    try:
        result = run_pipeline(cfg, overrides)
    except Exception:
        if not (sweeping and hydra_cfg.runtime.choices.get("hparams_search")):
            raise
        log.exception("trial failed (%s); the search goes on", " ".join(overrides))
        return FAILED_TRIAL_SCORE
    finally:
        if joined:
            cleanup_distributed()
    score = objective(result.metrics)
    table = "  ".join(f"{k}={v:.4f}" for k, v in sorted(result.metrics.items()) if k.startswith("test_"))
    if dist_info().is_main:
        print(f"pipeline {cfg.pipeline.name} seed {cfg.seed}: {table}  (MLflow run {result.parent_run_id})")
        print(f"  in the MLflow UI: {result.ui_link}")
    if not math.isfinite(score):
        return FAILED_TRIAL_SCORE
    return score


def torchrun_argv(argv: list[str]) -> list[str]:
    """Join torchrun's process group (if launched by it) and adapt the command line for this rank.

    Every rank runs Hydra: they share one run folder (stamped with rank 0's clock unless
    ``hydra.run.dir`` is given), and only rank 0 writes Hydra's files there (``.hydra/``, the log file);
    the other ranks log warnings to their console. Sweeps (``-m``) are refused: launch one torchrun per job.
    """
    info = init_distributed()
    if not info.enabled:
        return argv
    args = argv[1:]
    if any(arg in ("-m", "--multirun") for arg in args):
        raise SystemExit(
            "eegphase.run: -m/--multirun under torchrun is not supported (every rank would run the sweep); "
            "sweep with a launcher that starts one torchrun job per configuration"
        )
    extra = []
    stamp = broadcast_from_main(time.strftime("%Y-%m-%d/%H-%M-%S"))
    if not any(arg.startswith("hydra.run.dir=") for arg in args):
        extra.append(f"hydra.run.dir=outputs/{stamp}")
    if info.rank > 0:
        extra.append("hydra.output_subdir=null")
        if not any(arg.startswith("hydra/job_logging=") for arg in args):
            extra += ["hydra/job_logging=stdout", "hydra.job_logging.root.level=WARNING"]
    return [argv[0], *args, *extra]


def cli() -> None:
    """The ``eegphase-run`` console script and ``python -m eegphase.run``: ``main`` with torchrun's argv."""
    sys.argv = torchrun_argv(sys.argv)
    try:
        main()
    finally:
        cleanup_distributed()


if __name__ == "__main__":
    cli()
