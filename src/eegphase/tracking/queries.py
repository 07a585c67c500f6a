"""Read-only MLflow queries for reports: the pipeline runs of an experiment and their metric histories.

Kept beside ``mlflow_tracker`` so that MLflow stays inside ``eegphase.tracking``; the report package only
sees plain Python values (dicts, lists of points), never MLflow entities.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mlflow.entities import Run, ViewType
from mlflow.tracking import MlflowClient

from eegphase.tracking.mlflow_tracker import TAG_PHASE, TAG_PIPELINE, TrackingError

TAG_PARENT = "mlflow.parentRunId"
TAG_REUSED_RUN = "eegphase.reused_run"  # a reused phase run points at the run that trained the weights


@dataclass
class PipelineRun:
    """One FINISHED parent run of ``python -m eegphase.run``: what it was and what it scored."""

    run_id: str
    name: str
    pipeline: str
    start_time: int  # ms since the epoch; the newest run of a (config, seed) wins
    params: dict[str, str] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)


class RunQueries:
    """Read-only access to one tracking store."""

    def __init__(self, tracking_uri: str):
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri)

    def experiment_id(self, experiment: str) -> str:
        """The id of ``experiment``; a clear error (naming the experiments that do exist) when it is absent."""
        found = self.client.get_experiment_by_name(experiment)
        if found is None:
            names = sorted(e.name for e in self.client.search_experiments(view_type=ViewType.ALL))
            raise TrackingError(
                f"no MLflow experiment {experiment!r} in {self.tracking_uri}; experiments there: {names or 'none'}"
            )
        return found.experiment_id

    def finished_pipeline_runs(self, experiment: str) -> list[PipelineRun]:
        """Every FINISHED parent run (tag ``eegphase.phase=pipeline``) of ``experiment``, newest first."""
        query = f"tags.`{TAG_PHASE}` = 'pipeline' and attributes.status = 'FINISHED'"
        return [
            PipelineRun(
                run_id=run.info.run_id,
                name=run.info.run_name or "",
                pipeline=run.data.tags.get(TAG_PIPELINE, ""),
                start_time=int(run.info.start_time or 0),
                params=dict(run.data.params),
                metrics=dict(run.data.metrics),
                tags=dict(run.data.tags),
            )
            for run in self._search_all(self.experiment_id(experiment), query)
        ]

    def phase_run_id(self, parent_run_id: str, phase: str) -> str | None:
        """The run that trained ``phase`` for this pipeline run (following a reuse to the original), if any."""
        parent = self.client.get_run(parent_run_id)
        query = f"tags.`{TAG_PARENT}` = '{parent_run_id}' and tags.`{TAG_PHASE}` = '{phase}'"
        children = self._search_all(parent.info.experiment_id, query)
        if not children:
            return None
        child = children[0]
        return child.data.tags.get(TAG_REUSED_RUN) or child.info.run_id

    def run_metrics(self, run_id: str) -> dict[str, float]:
        """The latest value of every metric a run logged (a phase run's final metrics)."""
        return dict(self.client.get_run(run_id).data.metrics)

    def metric_keys(self, run_id: str) -> list[str]:
        """The names of every metric a run logged."""
        return sorted(self.client.get_run(run_id).data.metrics)

    def metric_history(self, run_id: str, key: str) -> list[tuple[int, float]]:
        """``(step, value)`` of every point of ``key`` by step; on a repeated step (a resume) the last one wins."""
        history = sorted(self.client.get_metric_history(run_id, key), key=lambda m: (m.step, m.timestamp))
        return sorted({m.step: m.value for m in history}.items())

    def _search_all(self, experiment_id: str, filter_string: str) -> list[Run]:
        runs: list[Run] = []
        token = None
        while True:
            page = self.client.search_runs(
                [experiment_id],
                filter_string=filter_string,
                order_by=["attributes.start_time DESC"],
                page_token=token,
            )
            runs.extend(page)
            token = page.token
            if not token:
                return runs
