"""Hydra callbacks for tracking: once-per-sweep set-up that parallel jobs must not race to do.

Selected by ``conf/hydra/callbacks/mlflow_experiment.yaml``. Hydra calls ``on_multirun_start`` in the
launching process before any job of a ``-m`` sweep starts (locally, in a SLURM array, or as Optuna trials),
so the MLflow database, its tables and the experiment exist before the jobs open their runs.
"""

from __future__ import annotations

import logging
from typing import Any

from hydra.experimental.callback import Callback
from omegaconf import DictConfig

from eegphase.tracking.mlflow_tracker import Tracker

log = logging.getLogger(__name__)


def ensure_experiment_from_config(config: DictConfig) -> str:
    """Create (or find) the MLflow experiment that ``config.tracking`` names; returns its id."""
    tracking = config.get("tracking")
    if tracking is None:
        raise ValueError(
            "the config has no `tracking` block (tracking.uri, tracking.experiment) to set up MLflow from"
        )
    for key in ("uri", "experiment"):
        if not tracking.get(key):
            raise ValueError(f"tracking.{key} is empty: set it in conf/config.yaml or on the command line")
    tracker = Tracker(str(tracking.uri), str(tracking.experiment), tracking.get("artifact_location"))
    return tracker.ensure_experiment()


class EnsureMlflowExperiment(Callback):
    """Create the tracking database and experiment once, before a multirun launches its jobs."""

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        experiment_id = ensure_experiment_from_config(config)
        log.info(
            "MLflow experiment %r (id %s) at %s",
            config.tracking.experiment,
            experiment_id,
            config.tracking.uri,
        )
