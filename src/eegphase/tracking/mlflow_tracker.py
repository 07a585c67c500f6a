"""The only module that talks to MLflow: runs, params, metrics, artifacts, tags, reuse look-ups.

Runs are addressed by id through ``MlflowClient`` (no global "active run"), so nested phase runs, reuse
checks and a Hydra multirun in one process never step on each other. Every run this module opens is closed
with FINISHED, FAILED (an exception) or KILLED (Ctrl-C / SIGTERM); a run left RUNNING by a SIGKILL is marked
KILLED the next time the same phase starts.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import mlflow
from mlflow.entities import Run, RunStatus
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

log = logging.getLogger(__name__)

# Public tag names: users filter on these in the MLflow UI.
TAG_PHASE = "eegphase.phase"
TAG_PIPELINE = "eegphase.pipeline"
TAG_FINGERPRINT = "eegphase.fingerprint"
TAG_REUSED = "eegphase.reused"
TAG_INIT_FROM = "eegphase.init_from"
TAG_OVERRIDES = "eegphase.overrides"
TAG_RESUMED = "eegphase.resumed_from"

RUNS_URI = re.compile(r"^runs:/(?P<run_id>[0-9a-f]{32})/(?P<path>.+)$")
MAX_PARAM_LENGTH = 6000


class TrackingError(Exception):
    """A tracking problem the user can act on (bad URI, unknown run, missing artifact)."""


def flatten(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested mapping -> ``{"a.b.c": value}``; lists become their string form."""
    out: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{name}."))
        else:
            out[name] = value
    return out


def default_artifact_location(tracking_uri: str) -> str | None:
    """For a SQLite store, artifacts go to ``mlartifacts`` beside the database file."""
    if tracking_uri.startswith("sqlite:///"):
        db = Path(tracking_uri[len("sqlite:///") :])
        return (db.resolve().parent / "mlartifacts").as_uri()
    return None


class Tracker:
    """One tracking store and experiment."""

    def __init__(self, tracking_uri: str, experiment: str, artifact_location: str | None = None):
        self.tracking_uri = tracking_uri
        self.client = MlflowClient(tracking_uri=tracking_uri)
        self.experiment_name = experiment
        self.artifact_location = artifact_location or default_artifact_location(tracking_uri)
        self.experiment_id = self.ensure_experiment()

    def ensure_experiment(self) -> str:
        """Create the experiment if needed (safe when several processes race to do it)."""
        found = self.client.get_experiment_by_name(self.experiment_name)
        if found is not None:
            return found.experiment_id
        try:
            return self.client.create_experiment(
                self.experiment_name, artifact_location=self.artifact_location
            )
        except MlflowException:
            found = self.client.get_experiment_by_name(self.experiment_name)
            if found is None:
                raise
            return found.experiment_id

    # ------------------------------------------------------------------ runs
    @contextlib.contextmanager
    def run(self, name: str, tags: Mapping[str, str], parent_run_id: str | None = None) -> Iterator[str]:
        """Open a run and always close it: FINISHED, FAILED on an exception, KILLED on Ctrl-C or SIGTERM."""
        all_tags = {"mlflow.runName": name, **{k: str(v) for k, v in tags.items()}}
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        run = self.client.create_run(self.experiment_id, tags=all_tags, run_name=name)
        run_id = run.info.run_id
        try:
            yield run_id
        except (KeyboardInterrupt, SystemExit):
            self.client.set_terminated(run_id, RunStatus.to_string(RunStatus.KILLED))
            raise
        except BaseException:
            self.client.set_terminated(run_id, RunStatus.to_string(RunStatus.FAILED))
            raise
        else:
            self.client.set_terminated(run_id, RunStatus.to_string(RunStatus.FINISHED))

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        items = [
            mlflow.entities.Param(key, str(value)[:MAX_PARAM_LENGTH])
            for key, value in flatten(params).items()
        ]
        for start in range(0, len(items), 100):
            self.client.log_batch(run_id, params=items[start : start + 100])

    def log_metrics(self, run_id: str, metrics: Mapping[str, float], step: int | None = None) -> None:
        clean = {k.replace("@", "_"): float(v) for k, v in metrics.items() if _is_number(v)}
        entities = [mlflow.entities.Metric(k, v, _now_ms(), step or 0) for k, v in clean.items()]
        for start in range(0, len(entities), 500):
            self.client.log_batch(run_id, metrics=entities[start : start + 500])

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        for key, value in tags.items():
            self.client.set_tag(run_id, key, str(value))

    def log_artifact(self, run_id: str, path: str | Path, artifact_path: str | None = None) -> None:
        self.client.log_artifact(run_id, str(path), artifact_path)

    def log_text(self, run_id: str, text: str, artifact_file: str) -> None:
        self.client.log_text(run_id, text, artifact_file)

    def log_figure(self, run_id: str, figure, artifact_file: str) -> None:
        self.client.log_figure(run_id, figure, artifact_file)

    def get_run(self, run_id: str) -> Run:
        try:
            return self.client.get_run(run_id)
        except MlflowException as exc:
            raise TrackingError(f"no MLflow run {run_id!r} in {self.tracking_uri}: {exc}") from exc

    # ------------------------------------------------------------------ reuse
    def runs_with_fingerprint(self, fingerprint: str, phase: str) -> list[Run]:
        query = f"tags.`{TAG_FINGERPRINT}` = '{fingerprint}' and tags.`{TAG_PHASE}` = '{phase}'"
        return self.client.search_runs(
            [self.experiment_id], filter_string=query, order_by=["start_time DESC"]
        )

    def find_finished(self, fingerprint: str, phase: str) -> Run | None:
        """The newest FINISHED run of this phase and fingerprint that trained (not itself a reuse)."""
        for run in self.runs_with_fingerprint(fingerprint, phase):
            if run.info.status == "FINISHED" and run.data.tags.get(TAG_REUSED) == "false":
                return run
        return None

    def close_stale(self, fingerprint: str, phase: str) -> list[str]:
        """Mark runs of this fingerprint still RUNNING (their process was killed), and their pipeline runs, as
        KILLED; return the phase runs' ids."""
        stale = []
        for run in self.runs_with_fingerprint(fingerprint, phase):
            if run.info.status == "RUNNING":
                self.client.set_terminated(run.info.run_id, RunStatus.to_string(RunStatus.KILLED))
                stale.append(run.info.run_id)
                parent = run.data.tags.get("mlflow.parentRunId")
                if parent and self.client.get_run(parent).info.status == "RUNNING":
                    self.client.set_terminated(parent, RunStatus.to_string(RunStatus.KILLED))
        return stale

    # ------------------------------------------------------------------ artifacts by URI
    def download(self, uri: str, dst: str | Path | None = None) -> Path:
        """A local copy of ``runs:/<run_id>/<path>`` (or a plain local path), with errors that say what is wrong."""
        if not uri.startswith("runs:/"):
            path = Path(uri)
            if not path.exists():
                raise TrackingError(
                    f"init_from {uri!r}: no such file (expected runs:/<run_id>/<path> or a path)"
                )
            return path
        match = RUNS_URI.match(uri)
        if match is None:
            raise TrackingError(
                f"init_from {uri!r} is not a valid MLflow URI: expected runs:/<32-hex run id>/<path>"
            )
        self.get_run(match["run_id"])
        if dst is not None:
            os.makedirs(dst, exist_ok=True)
        try:
            local = mlflow.artifacts.download_artifacts(
                artifact_uri=uri, dst_path=None if dst is None else str(dst), tracking_uri=self.tracking_uri
            )
        except (MlflowException, OSError) as exc:
            raise TrackingError(
                f"init_from {uri!r}: artifact not found in run {match['run_id']} ({exc})"
            ) from exc
        return Path(local)


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)
