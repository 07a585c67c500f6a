"""Turn a CLI ``c1=``/``c2=`` value (a checkpoint path or ``runs:/<run_id>/<artifact path>``) into a model.

For an MLflow URI the checkpoint is downloaded and the model config read from the same run's
``config.yaml`` artifact (key ``model``; ``preprocess.scale`` x ``input_scale`` gives the input scale,
``preprocess.sfreq`` the rate the model was trained on), unless given.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from eegphase.export.builder import SCORER_SFREQ, ExportError, SubmissionModel

_RUNS_URI = re.compile(r"^runs:/(?P<run_id>[A-Za-z0-9_-]+)/(?P<path>[^/].*)$")
RUN_CONFIG_ARTIFACT = "config.yaml"


def is_mlflow_uri(value: str) -> bool:
    return "://" in value or re.match(r"^[A-Za-z][A-Za-z0-9+.-]*:/", value) is not None


def parse_runs_uri(uri: str) -> tuple[str, str]:
    """``runs:/<run_id>/<artifact path>`` -> (run_id, artifact path); anything else is an ExportError."""
    match = _RUNS_URI.match(uri)
    if match is None:
        raise ExportError(
            f"malformed MLflow URI {uri!r}: expected runs:/<run_id>/<artifact path>, "
            "e.g. runs:/0123abcd/checkpoints/best.pt"
        )
    return match["run_id"], match["path"]


def parse_model_cfg(text: str, option: str) -> dict[str, Any]:
    """A ``c1_model=`` value: a JSON or YAML mapping such as ``{name: labram, size: base}``."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ExportError(f"{option}={text!r} is not valid JSON/YAML: {err}") from err
    if not isinstance(value, Mapping):
        raise ExportError(f"{option}={text!r} must be a mapping such as {{name: eegnex}}")
    return dict(value)


def _download(uri: str, tracking_uri: str, dst: Path, **where: str) -> Path:
    import mlflow  # slow to import; only URIs need it

    try:
        return Path(
            mlflow.artifacts.download_artifacts(tracking_uri=tracking_uri, dst_path=str(dst), **where)
        )
    except Exception as err:  # MLflow raises several types (MlflowException, OSError...) for a bad run/path
        raise ExportError(f"cannot download {uri} from {tracking_uri}: {err}") from err


def _run_config(run_id: str, uri: str, tracking_uri: str, dst: Path) -> dict[str, Any]:
    config_uri = f"runs:/{run_id}/{RUN_CONFIG_ARTIFACT}"
    path = _download(config_uri, tracking_uri, dst, run_id=run_id, artifact_path=RUN_CONFIG_ARTIFACT)
    config = yaml.safe_load(path.read_text())
    if not isinstance(config, Mapping) or not isinstance(config.get("model"), Mapping):
        raise ExportError(
            f"{config_uri} (for {uri}) has no 'model' mapping; pass the model config explicitly"
        )
    return dict(config)


def resolve_model(
    value: str,
    model_cfg: Mapping[str, Any] | None,
    input_scale: float | None,
    use_ema: bool,
    tracking_uri: str,
    download_dir: Path,
    sfreq: float | None = None,
) -> SubmissionModel:
    """A SubmissionModel for a checkpoint path (``model_cfg`` required) or an MLflow ``runs:/`` URI;
    ``sfreq``: the rate the model was trained on (None: 100 Hz for a file, the run's ``preprocess.sfreq``)."""
    if not is_mlflow_uri(value):
        if model_cfg is None:
            raise ExportError(
                f"checkpoint {value} is a file path: give its model config (c1_model=/c2_model=)"
            )
        scale = 1.0 if input_scale is None else input_scale
        return SubmissionModel(Path(value), model_cfg, scale, use_ema, sfreq=sfreq or SCORER_SFREQ)
    run_id, artifact_path = parse_runs_uri(value)
    dst = download_dir / run_id
    dst.mkdir(parents=True, exist_ok=True)
    checkpoint = _download(value, tracking_uri, dst, artifact_uri=value)
    if model_cfg is None or input_scale is None or sfreq is None:
        config = _run_config(run_id, value, tracking_uri, dst)
        model_cfg = config["model"] if model_cfg is None else model_cfg
        if input_scale is None:
            # volts -> cached units (preprocess.scale) -> model input (input_scale), as in training
            input_scale = float((config.get("preprocess") or {}).get("scale", 1.0)) * float(
                config.get("input_scale", 1.0)
            )
        if sfreq is None:
            sfreq = float((config.get("preprocess") or {}).get("sfreq", SCORER_SFREQ))
    return SubmissionModel(checkpoint, model_cfg, input_scale, use_ema, sfreq=sfreq, source=value)
