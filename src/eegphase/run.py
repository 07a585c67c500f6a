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

import hydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig

from eegphase.config import CONF_DIR
from eegphase.pipeline.runner import run_pipeline
from eegphase.pipeline.schema import register_schemas

log = logging.getLogger("eegphase")
FAILED_TRIAL_SCORE = 1.0e6

register_schemas()


def _terminate(signum, frame):  # SIGTERM (e.g. SLURM preemption) ends runs as KILLED, like Ctrl-C
    raise KeyboardInterrupt(f"signal {signum}")


def objective(metrics: dict[str, float]) -> float:
    """The number a sweep minimises: the validation score, else the mean validation NRMSE."""
    if "val_score" in metrics:
        return float(metrics["val_score"])
    values = [v for k, v in metrics.items() if k.startswith("val_nrmse_")]
    return float(sum(values) / len(values)) if values else math.nan


@hydra.main(config_path=str(CONF_DIR), config_name="config", version_base="1.3")
def main(cfg: DictConfig) -> float:
    signal.signal(signal.SIGTERM, _terminate)
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
    score = objective(result.metrics)
    table = "  ".join(f"{k}={v:.4f}" for k, v in sorted(result.metrics.items()) if k.startswith("test_"))
    print(f"pipeline {cfg.pipeline.name} seed {cfg.seed}: {table}  (MLflow run {result.parent_run_id})")
    if not math.isfinite(score):
        return FAILED_TRIAL_SCORE
    return score


if __name__ == "__main__":
    sys.exit(main())
