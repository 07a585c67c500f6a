"""Models in MLflow: each fine-tuned model logged in the run that trained it, the challenge models registered
with an alias on the version that scored best.

A model is saved with MLflow's PyTorch flavor in its ``pt2`` format (``torch.export``): an ATen graph and raw
tensor weights, which ``mlflow.pytorch.load_model`` reads back without unpickling anything (MLflow 3 refuses
pickled models unless ``MLFLOW_ALLOW_PICKLE_DESERIALIZATION`` is set) and without eegphase installed.

``mlflow.pytorch.log_model`` writes into the process's active run under the global tracking URI; runs here
are addressed by id (see ``mlflow_tracker``), so :func:`log_torch_model` does what it does by id: create the
LoggedModel with its source run, ``mlflow.pytorch.save_model`` into it, finalize it, and list it among the
run's outputs.
"""

from __future__ import annotations

import contextlib
import math
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from mlflow.entities import LoggedModelOutput, LoggedModelStatus, Metric
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.models import Model, ModelSignature
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS, ErrorCode
from mlflow.tracking import MlflowClient
from mlflow.tracking._tracking_service.utils import _use_tracking_uri
from mlflow.types import Schema, TensorSpec

from eegphase.locks import file_lock

if TYPE_CHECKING:  # torch is imported where a model is logged, not by every user of the tracker
    import torch

# On the run that trained a model: eegphase.model.<name> = its LoggedModel id (models:/<id> loads it).
TAG_MODEL = "eegphase.model."
# On a registered version: what it scored, so that the alias can be moved by comparing versions.
TAG_SCORE = "eegphase.score"
TAG_SCORE_METRIC = "eegphase.score_metric"
MODEL_TYPE = "eeg-predictor"


def window_signature(example: torch.Tensor, output: torch.Tensor) -> ModelSignature:
    """float32 windows (any batch, the example's channels and samples) -> float32 predictions (any batch)."""
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *example.shape[1:]))]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *output.shape[1:]))]),
    )


def log_torch_model(
    client: MlflowClient,
    run_id: str,
    model: torch.nn.Module,
    name: str,
    example: torch.Tensor,
    metric_keys: Iterable[str] = (),
    metadata: Mapping[str, Any] | None = None,
) -> str:
    """Log ``model`` (eval mode, CPU, float32) as an MLflow model of run ``run_id``; returns its model id.

    ``example`` (a batch of at least two windows, so that the batch size stays free in the exported graph) is
    traced and stored as the input example. The run's params, and its metrics ``metric_keys``, are copied onto
    the model, as ``mlflow.pytorch.log_model`` copies a run's params and metrics.
    """
    import mlflow.pytorch
    import torch

    model = model.eval().cpu()
    example = example.detach().cpu().float()
    with torch.no_grad():
        output = model(example).float()
    run = client.get_run(run_id)
    logged = client.create_logged_model(
        run.info.experiment_id,
        name=name,
        source_run_id=run_id,
        params=dict(run.data.params),
        model_type=MODEL_TYPE,
    )
    try:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "model"
            mlflow.pytorch.save_model(
                model,
                path,
                mlflow_model=Model(
                    artifact_path=logged.artifact_location,
                    run_id=run_id,
                    model_uuid=logged.model_id,
                    model_id=logged.model_id,
                ),
                signature=window_signature(example, output),
                input_example=example.numpy(),
                serialization_format="pt2",
                # torch alone loads the graph: naming it spares MLflow inferring requirements in a subprocess
                pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
                metadata=dict(metadata or {}),
            )
            client.log_model_artifacts(logged.model_id, str(path))
    except BaseException:
        client.finalize_logged_model(logged.model_id, LoggedModelStatus.FAILED)
        raise
    client.finalize_logged_model(logged.model_id, LoggedModelStatus.READY)
    client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
    link_metrics(client, run_id, logged.model_id, metric_keys)
    return logged.model_id


def link_metrics(client: MlflowClient, run_id: str, model_id: str, keys: Iterable[str]) -> None:
    """Attach the run's latest value of each metric in ``keys`` to the model (the Models tab shows them).

    The points are logged again with their own timestamp and step, which the store keeps once in the run's
    history, plus the model's id.
    """
    points = []
    for key in keys:
        history = client.get_metric_history(run_id, key)
        if history:
            last = max(history, key=lambda m: (m.step, m.timestamp))
            points.append(Metric(key, last.value, last.timestamp, last.step, model_id, run_id=run_id))
    for start in range(0, len(points), 500):
        client.log_batch(run_id, metrics=points[start : start + 500])


def link_model_outputs(client: MlflowClient, run_id: str, model_ids: Iterable[str]) -> None:
    """List models among a run's outputs (a pipeline run lists the models its fine-tuning produced)."""
    outputs = [LoggedModelOutput(model_id, step=0) for model_id in model_ids]
    if outputs:
        client.log_outputs(run_id, outputs)


def _score(version: ModelVersion) -> float:
    try:
        value = float(version.tags.get(TAG_SCORE, "nan"))
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else math.nan


def best_version(versions: Iterable[ModelVersion], lower_is_better: bool = True) -> ModelVersion | None:
    """The version with the best finite score tag; on a tie the oldest (a new equal version does not win)."""
    scored = [v for v in versions if math.isfinite(_score(v))]
    if not scored:
        return None
    sign = 1.0 if lower_is_better else -1.0
    return min(scored, key=lambda v: (sign * _score(v), int(v.version)))


def all_versions(client: MlflowClient, name: str) -> list[ModelVersion]:
    quoted = name.replace("'", "\\'")
    versions: list[ModelVersion] = []
    token = None
    while True:
        page = client.search_model_versions(f"name = '{quoted}'", page_token=token)
        versions.extend(page)
        token = page.token
        if not token:
            return versions


def register_version(
    client: MlflowClient,
    model_id: str,
    name: str,
    score: float,
    score_metric: str,
    lower_is_better: bool = True,
    alias: str | None = "best",
    tags: Mapping[str, Any] | None = None,
    description: str = "",
    model_description: str = "",
    lock_path: Path | None = None,
) -> tuple[ModelVersion, ModelVersion | None]:
    """Register model ``model_id`` as a version of ``name`` (once: a model already registered there keeps its
    version), tagged with its ``score`` (the metric ``score_metric``), and point ``alias`` at the version that
    scored best; returns (this version, the alias's version, None when no version has a finite score).

    Under ``lock_path`` (a file lock every process using the store takes), so two pipelines finishing at once
    neither lose a version nor move the alias from stale reads.
    """
    model = client.get_logged_model(model_id)
    with file_lock(lock_path) if lock_path is not None else contextlib.nullcontext():
        try:
            client.create_registered_model(name, description=model_description or None)
        except MlflowException as exc:
            if exc.error_code != ErrorCode.Name(RESOURCE_ALREADY_EXISTS):
                raise
        versions = all_versions(client, name)
        source = f"models:/{model_id}"
        mine = [v for v in versions if v.source == source]  # (the store keeps no model_id on a version)
        if mine:
            version = mine[0]
        else:
            all_tags = {
                **{k: str(v) for k, v in (tags or {}).items()},
                TAG_SCORE: repr(float(score)),
                TAG_SCORE_METRIC: score_metric,
            }
            # A SQLite registry looks the source model up through the global tracking URI (MLflow 3.17's
            # SqlAlchemyStore.create_model_version, a TODO there): point it at this client's store meanwhile.
            with _use_tracking_uri(client.tracking_uri):
                version = client.create_model_version(
                    name,
                    source=source,
                    run_id=model.source_run_id,
                    tags=all_tags,
                    description=description,
                    model_id=model_id,
                )
            versions = all_versions(client, name)
        comparable = [v for v in versions if v.tags.get(TAG_SCORE_METRIC) == score_metric]
        best = best_version(comparable, lower_is_better) if alias else None
        aliases = client.get_registered_model(name).aliases  # (search results leave a version's aliases out)
        if best is not None and str(aliases.get(alias)) != str(best.version):
            client.set_registered_model_alias(name, alias, best.version)
    return version, best
