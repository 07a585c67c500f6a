"""The only module that talks to MLflow: runs, params, metrics, artifacts, tags, reuse look-ups.

Runs are addressed by id through ``MlflowClient`` (no global "active run"), so nested phase runs, reuse
checks and a Hydra multirun in one process never step on each other. Every run this module opens is closed
with FINISHED, FAILED (an exception) or KILLED (Ctrl-C / SIGTERM); a run left RUNNING by a SIGKILL is marked
KILLED the next time the same phase starts.

Several processes share one store safely: creating or migrating a SQLite store (and the experiment) happens
under a file lock beside the database, and each open run holds a lease (a locked file, named by its
``eegphase.lease`` tag) for as long as its process lives, so a RUNNING run is taken for stale only when no
process holds its lease.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import re
import socket
import tempfile
import uuid
import warnings
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import mlflow
import mlflow.data
import pandas as pd
from mlflow.data.sources import LocalArtifactDatasetSource
from mlflow.entities import DatasetInput, InputTag, Metric, Run, RunStatus
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient
from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

from eegphase.locks import file_lock, is_held, lease
from eegphase.tracking.models import (
    TAG_MODEL,
    link_model_outputs,
    log_torch_model,
    register_version,
)

log = logging.getLogger(__name__)

# Public tag names: users filter on these in the MLflow UI.
TAG_PHASE = "eegphase.phase"
TAG_PIPELINE = "eegphase.pipeline"
TAG_FINGERPRINT = "eegphase.fingerprint"
TAG_REUSED = "eegphase.reused"
TAG_INIT_FROM = "eegphase.init_from"
TAG_OVERRIDES = "eegphase.overrides"
TAG_RESUMED = "eegphase.resumed_from"
# Who holds a run open: its lease file's name (in the store's lease folder), host and process id.
TAG_LEASE = "eegphase.lease"
TAG_HOST = "eegphase.host"
TAG_PID = "eegphase.pid"
# The experiment tag MLflow 3's UI reads to open an experiment on its model-training view (runs, metrics,
# datasets) rather than its GenAI view (traces, which this project has none of).
TAG_EXPERIMENT_KIND = "mlflow.experimentKind"
EXPERIMENT_KIND = "custom_model_development"

RUNS_URI = re.compile(r"^runs:/(?P<run_id>[0-9a-f]{32})/(?P<path>.+)$")
MAX_PARAM_LENGTH = 6000
DATASET_ATTEMPTS = 3  # a lost insert race needs one retry; more only if other processes keep winning


LOCAL_UI = "http://127.0.0.1:5000"  # where ``make ui`` serves a local store

# A view of the runs table stored in the experiment, as the UI's "Share" button stores one (an experiment tag
# mlflow.sharedViewState.<key> holding the table's filter, sort and columns): the pipeline runs only, best
# test score first, with their scores as columns. MLflow 3.17 shows no metric column until one is chosen.
PIPELINES_VIEW = "eegphase-pipelines"
TAG_SHARED_VIEW = "mlflow.sharedViewState."
VIEW_METRICS = ("test_score", "test_nrmse_c1", "test_nrmse_c2")  # lower is better


def pipelines_view() -> str:
    """The JSON of :data:`PIPELINES_VIEW`: search facets and UI state as the MLflow 3.17 UI reads them."""
    columns = [f"tags.`{TAG_PIPELINE}`", "params.`seed`", *(f"metrics.`{m}`" for m in VIEW_METRICS)]
    return json.dumps(
        {
            "searchFilter": f"tags.`{TAG_PHASE}` = 'pipeline'",
            "orderByKey": f"metrics.`{VIEW_METRICS[0]}`",
            "orderByAsc": True,
            "selectedColumns": columns,
        },
        sort_keys=True,
    )


def ui_link(tracking_uri: str, experiment_id: str, run_id: str | None = None) -> str:
    """A link that opens one run, or the experiment's pipeline runs (:data:`PIPELINES_VIEW`), on the MLflow
    UI's model-training view.

    MLflow 3.17's UI picks GenAI or model training from a ``workflowType`` URL parameter (else the browser's
    last choice, GenAI by default), not from the experiment's ``mlflow.experimentKind`` tag.
    """
    base = tracking_uri.rstrip("/") if tracking_uri.startswith(("http://", "https://")) else LOCAL_UI
    if run_id:
        return f"{base}/#/experiments/{experiment_id}/runs/{run_id}?workflowType=machine_learning"
    view = f"viewStateShareKey={PIPELINES_VIEW}&workflowType=machine_learning"
    return f"{base}/#/experiments/{experiment_id}/runs?{view}"


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


def local_store_folders(tracking_uri: str, artifact_location: str | None = None) -> dict[str, Path]:
    """The local folders a store writes to (the SQLite database's, the artifacts'), keyed by the config key
    that chooses them, for the start-up check that they can be written."""
    folders = {}
    db = sqlite_path(tracking_uri)
    if db is not None:
        folders["tracking.uri"] = db.parent
    location = artifact_location or default_artifact_location(tracking_uri)
    parsed = urlparse(location) if location else None
    if parsed is not None and parsed.scheme in ("", "file"):
        folders["tracking.artifact_location"] = Path(url2pathname(parsed.path))
    return folders


def sqlite_path(tracking_uri: str) -> Path | None:
    """The database file of a ``sqlite:///`` URI (None for other stores and in-memory SQLite)."""
    if not tracking_uri.startswith("sqlite:///"):
        return None
    path = tracking_uri[len("sqlite:///") :].split("?", 1)[0]
    return Path(path) if path and path != ":memory:" else None


def store_lock_path(tracking_uri: str) -> Path | None:
    """``<db>.lock`` beside a SQLite store: held while the store is created, migrated or given an experiment."""
    db = sqlite_path(tracking_uri)
    return db.with_name(f"{db.name}.lock") if db is not None else None


def registry_lock_path(tracking_uri: str) -> Path:
    """Held while a model version is registered and the alias moved: ``<db>.registry.lock`` beside a SQLite
    store, else in the lease folder (which, for a remote store, only this machine's processes share)."""
    db = sqlite_path(tracking_uri)
    if db is not None:
        return db.with_name(f"{db.name}.registry.lock")
    return lease_dir(tracking_uri)[0] / "registry.lock"


def lease_dir(tracking_uri: str) -> tuple[Path, bool]:
    """Where runs' lease files live, and whether every process using the store sees that folder.

    Beside a SQLite database or inside a file store, which every client reaches on the same filesystem; for
    a remote store (a tracking server, a database server), a folder of this machine's temporary directory.
    """
    db = sqlite_path(tracking_uri)
    if db is not None:
        return db.with_name(f"{db.name}.leases"), True
    if tracking_uri.startswith("file:") or ("://" not in tracking_uri and tracking_uri != "databricks"):
        root = Path(tracking_uri.removeprefix("file://").removeprefix("file:"))
        return root / ".eegphase-leases", True
    digest = hashlib.sha256(tracking_uri.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "eegphase-leases" / digest, False


class Tracker:
    """One tracking store and experiment."""

    def __init__(self, tracking_uri: str, experiment: str, artifact_location: str | None = None):
        self.tracking_uri = tracking_uri
        self.experiment_name = experiment
        self.artifact_location = artifact_location or default_artifact_location(tracking_uri)
        self.lease_dir, self.leases_shared = lease_dir(tracking_uri)
        lock = store_lock_path(tracking_uri)
        # MLflow creates a new SQLite store's tables and runs its migrations when a client first touches it,
        # without a lock: two processes doing that at once corrupt the database. One at a time, here.
        with file_lock(lock) if lock is not None else contextlib.nullcontext():
            self.client = MlflowClient(tracking_uri=tracking_uri)
            self.experiment_id = self.ensure_experiment()

    def ensure_experiment(self) -> str:
        """Create the experiment if needed (safe when several processes race to do it), marked as model
        training for the UI and holding the pipelines view (:data:`PIPELINES_VIEW`); an experiment made before
        the mark gets it, one a user marked keeps theirs."""
        found = self.client.get_experiment_by_name(self.experiment_name)
        if found is None:
            try:
                return self.client.create_experiment(
                    self.experiment_name,
                    artifact_location=self.artifact_location,
                    tags={
                        TAG_EXPERIMENT_KIND: EXPERIMENT_KIND,
                        TAG_SHARED_VIEW + PIPELINES_VIEW: pipelines_view(),
                    },
                )
            except MlflowException:
                found = self.client.get_experiment_by_name(self.experiment_name)
                if found is None:
                    raise
        if TAG_EXPERIMENT_KIND not in found.tags:
            self.client.set_experiment_tag(found.experiment_id, TAG_EXPERIMENT_KIND, EXPERIMENT_KIND)
        if (
            found.tags.get(TAG_SHARED_VIEW + PIPELINES_VIEW) != pipelines_view()
        ):  # (this code's version of it)
            self.client.set_experiment_tag(
                found.experiment_id, TAG_SHARED_VIEW + PIPELINES_VIEW, pipelines_view()
            )
        return found.experiment_id

    # ------------------------------------------------------------------ runs
    @contextlib.contextmanager
    def run(self, name: str, tags: Mapping[str, str], parent_run_id: str | None = None) -> Iterator[str]:
        """Open a run and always close it: FINISHED, FAILED on an exception, KILLED on Ctrl-C or SIGTERM.

        The run's lease is taken before the run exists and let go after it is closed, so no other process
        ever sees it RUNNING without a holder.
        """
        token = uuid.uuid4().hex
        all_tags = {
            "mlflow.runName": name,
            **{k: str(v) for k, v in tags.items()},
            TAG_LEASE: token,
            TAG_HOST: socket.gethostname(),
            TAG_PID: str(os.getpid()),
        }
        if parent_run_id:
            all_tags["mlflow.parentRunId"] = parent_run_id
        with lease(self.lease_dir / f"{token}.lock"):
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

    def log_dataset(
        self,
        run_id: str,
        table: pd.DataFrame,
        name: str,
        context: str,
        source: str | Path,
        targets: str | None = None,
    ) -> None:
        """Record ``table`` as an input of the run (what ``mlflow.log_input`` does, by run id): the run's
        Datasets list shows its name, context, source, digest, schema and row count; the rows are not stored."""
        with warnings.catch_warnings():  # (the schema, inferred here) a hint about models, not about tables
            warnings.filterwarnings("ignore", "Hint: Inferred schema contains integer column", UserWarning)
            entity = mlflow.data.from_pandas(
                table, source=LocalArtifactDatasetSource(str(source)), name=name, targets=targets
            )._to_mlflow_entity()
        tags = [InputTag(MLFLOW_DATASET_CONTEXT, context)]
        # MLflow looks the dataset up, then inserts it: two processes logging one table at once both insert,
        # and the later one fails on the unique (experiment, name, digest). Its retry finds the row and links it.
        for attempt in range(DATASET_ATTEMPTS):
            try:
                self.client.log_inputs(run_id, datasets=[DatasetInput(entity, tags)])
                return
            except MlflowException as error:
                if attempt + 1 == DATASET_ATTEMPTS or not _is_duplicate_row(error):
                    raise

    # ------------------------------------------------------------------ models
    def log_model(
        self,
        run_id: str,
        model,
        name: str,
        example,
        metric_keys: list[str] | tuple[str, ...] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> str:
        """Log a torch model (``models.log_torch_model``) in ``run_id``, named ``name``; the run's tag
        ``eegphase.model.<name>`` holds its id. Returns the id (``models:/<id>`` loads it)."""
        model_id = log_torch_model(self.client, run_id, model, name, example, metric_keys, metadata)
        self.set_tags(run_id, {f"{TAG_MODEL}{name}": model_id})
        return model_id

    def logged_models(self, run_id: str) -> dict[str, str]:
        """name -> model id of the models :meth:`log_model` logged in ``run_id``."""
        tags = self.get_run(run_id).data.tags
        return {k.removeprefix(TAG_MODEL): v for k, v in tags.items() if k.startswith(TAG_MODEL)}

    def link_models(self, run_id: str, model_ids) -> None:
        """List models another run logged among this run's outputs (a pipeline run, its fine-tuned models)."""
        link_model_outputs(self.client, run_id, model_ids)

    def register_model(
        self,
        model_id: str,
        name: str,
        score: float,
        score_metric: str,
        lower_is_better: bool = True,
        alias: str | None = "best",
        tags: Mapping[str, Any] | None = None,
        description: str = "",
        model_description: str = "",
    ) -> tuple[ModelVersion, ModelVersion | None]:
        """Register a logged model as a version of ``name`` and keep ``alias`` on the best-scoring version
        (``models.register_version``), under this store's registry lock: (the version, the alias's version)."""
        return register_version(
            self.client,
            model_id,
            name,
            score,
            score_metric,
            lower_is_better=lower_is_better,
            alias=alias,
            tags=tags,
            description=description,
            model_description=model_description,
            lock_path=registry_lock_path(self.tracking_uri),
        )

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
        """Mark runs of this fingerprint left RUNNING by a process that died (no one holds their lease), and
        their pipeline runs, as KILLED; return the phase runs' ids. Runs of live processes are left alone."""
        stale = []
        for run in self.runs_with_fingerprint(fingerprint, phase):
            if run.info.status != "RUNNING":
                continue
            if not self.is_dead(run):
                log.info(
                    "%s run %s of fingerprint %s is alive (pid %s on %s): not taking it for stale",
                    phase,
                    run.info.run_id,
                    fingerprint,
                    run.data.tags.get(TAG_PID, "?"),
                    run.data.tags.get(TAG_HOST, "?"),
                )
                continue
            if self._kill_if_running(run.info.run_id):
                stale.append(run.info.run_id)
            parent = run.data.tags.get("mlflow.parentRunId")
            if parent:
                parent_run = self.client.get_run(parent)
                if parent_run.info.status == "RUNNING" and self.is_dead(parent_run):
                    self._kill_if_running(parent)
        return stale

    def copy_history(
        self, sources: list[str], run_id: str, keep: Callable[[Metric], bool] | None = None
    ) -> None:
        """Copy the metric points (step and time kept) that ``keep`` accepts (all by default) and every
        artifact of the killed runs ``sources`` into ``run_id``, the run that resumes their work: it then holds
        what was logged before the kill and the resume does not log again."""
        for source in sources:
            run = self.client.get_run(source)
            points = [
                mlflow.entities.Metric(m.key, m.value, m.timestamp, m.step)
                for key in run.data.metrics
                for m in self.client.get_metric_history(source, key)
                if keep is None or keep(m)
            ]
            for start in range(0, len(points), 500):
                self.client.log_batch(run_id, metrics=points[start : start + 500])
            if self.client.list_artifacts(source):
                with tempfile.TemporaryDirectory() as tmp:
                    local = self.client.download_artifacts(source, "", tmp)
                    self.client.log_artifacts(run_id, local)

    def is_dead(self, run: Run) -> bool:
        """Whether the process that opened ``run`` is gone: no one holds its lease.

        A run without a lease tag (opened before leases existed) has nothing to prove it alive; a run of
        another machine whose lease this machine cannot see is presumed alive.
        """
        token = run.data.tags.get(TAG_LEASE)
        if token is None:
            return True
        host = run.data.tags.get(TAG_HOST)
        if not self.leases_shared and host != socket.gethostname():
            log.warning(
                "run %s is RUNNING on %s, whose lease this machine cannot check (store %s): leaving it open",
                run.info.run_id,
                host,
                self.tracking_uri,
            )
            return False
        return not is_held(self.lease_dir / f"{token}.lock")

    def _kill_if_running(self, run_id: str) -> bool:
        # Re-read after the lease check: a run closed since the search (its holder sets the final status
        # before letting go of the lease) keeps its status.
        run = self.client.get_run(run_id)
        if run.info.status != "RUNNING":
            return False
        self.client.set_terminated(run_id, RunStatus.to_string(RunStatus.KILLED))
        token = run.data.tags.get(TAG_LEASE)
        if token is not None:  # the dead process's lease file; its name is never used again
            (self.lease_dir / f"{token}.lock").unlink(missing_ok=True)
        return True

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


def _is_duplicate_row(error: MlflowException) -> bool:
    """An insert that lost a race to another process (SQLite, PostgreSQL, MySQL wordings; a tracking server
    passes the database's message on)."""
    text = str(error).lower()
    return "unique constraint" in text or "duplicate entry" in text or "duplicate key" in text


def _is_number(value: Any) -> bool:
    try:
        float(value)
    except (TypeError, ValueError):
        return False
    return True


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)
