"""MLflow under torchrun: rank 0 talks to the store, the other ranks receive its answers.

Every rank runs the same pipeline code and calls the tracker at the same points. Writes (runs, params,
metrics, artifacts, tags) happen on rank 0 only; look-ups that steer the pipeline (reuse, stale runs, the
upstream checkpoint) are made on rank 0 and broadcast, so every rank takes the same decision.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.entities import Run

from eegphase.engine.distributed import broadcast_from_main, dist_info
from eegphase.tracking.mlflow_tracker import Tracker


class RankZeroTracker:
    """The :class:`Tracker` interface the pipeline runner uses, safe to call from every rank."""

    def __init__(self, tracking_uri: str, experiment: str, artifact_location: str | None = None):
        self.is_main = dist_info().is_main
        self.tracker = Tracker(tracking_uri, experiment, artifact_location) if self.is_main else None
        # the experiment exists before any rank goes on
        self.experiment_id = broadcast_from_main(self.tracker.experiment_id if self.tracker else None)

    @contextlib.contextmanager
    def run(self, name: str, tags: Mapping[str, str], parent_run_id: str | None = None) -> Iterator[str]:
        if self.tracker is None:
            yield str(broadcast_from_main(None))
            return
        with self.tracker.run(name, tags, parent_run_id) as run_id:
            broadcast_from_main(run_id)
            yield run_id

    # ------------------------------------------------------------------ writes: rank 0 only
    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        if self.tracker is not None:
            self.tracker.log_params(run_id, params)

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int | None = None) -> None:
        if self.tracker is not None:
            self.tracker.log_metrics(run_id, metrics, step)

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        if self.tracker is not None:
            self.tracker.set_tags(run_id, tags)

    def log_artifact(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        if self.tracker is not None:
            self.tracker.log_artifact(run_id, path, artifact_path)

    def copy_history(self, sources: list[str], run_id: str) -> None:
        if self.tracker is not None:
            self.tracker.copy_history(sources, run_id)

    def log_dataset(
        self,
        run_id: str,
        table: pd.DataFrame,
        name: str,
        context: str,
        source: str | Path,
        targets: str | None = None,
    ) -> None:
        if self.tracker is not None:
            self.tracker.log_dataset(run_id, table, name, context, source, targets)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        if self.tracker is not None:
            self.tracker.log_text(run_id, text, artifact_file)

    def log_figure(self, run_id: str, figure, artifact_file: str) -> None:
        if self.tracker is not None:
            self.tracker.log_figure(run_id, figure, artifact_file)

    def log_model(self, run_id: str, model, name: str, example, metric_keys=(), metadata=None) -> str | None:
        """Rank 0 logs (the model's id); the others get None: they neither build nor log the model."""
        if self.tracker is None:
            return None
        return self.tracker.log_model(run_id, model, name, example, metric_keys, metadata)

    def link_models(self, run_id: str, model_ids) -> None:
        if self.tracker is not None:
            self.tracker.link_models(run_id, model_ids)

    def logged_models(self, run_id: str) -> dict[str, str]:
        return self.tracker.logged_models(run_id) if self.tracker is not None else {}

    def register_model(self, model_id: str, name: str, score: float, score_metric: str, **options):
        """Rank 0 registers (the runner registers on rank 0 only); the others get (None, None)."""
        if self.tracker is None:
            return None, None
        return self.tracker.register_model(model_id, name, score, score_metric, **options)

    # ------------------------------------------------------------------ decisions: rank 0's, broadcast
    def find_finished(self, fingerprint: str, phase: str) -> Run | None:
        found = self.tracker.find_finished(fingerprint, phase) if self.tracker is not None else None
        return broadcast_from_main(found)

    def close_stale(self, fingerprint: str, phase: str) -> list[str]:
        stale = self.tracker.close_stale(fingerprint, phase) if self.tracker is not None else None
        return broadcast_from_main(stale)

    def download(self, uri: str, dst: str | Path | None = None) -> Path:
        """Rank 0 downloads (into a folder every rank sees: the phase's work folder) and names the path."""
        local = self.tracker.download(uri, dst) if self.tracker is not None else None
        return Path(broadcast_from_main(local))
