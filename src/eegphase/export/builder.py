"""Build the challenge zip: a flat ``submission.py`` plus one plain state dict per challenge.

Why bundled source and state dicts rather than TorchScript: a state dict loads in any torch version, with
``torch.load(weights_only=True)``, while a TorchScript archive saved by a newer torch can fail to load in
the scorer's older one (operator schemas change, e.g. ``scaled_dot_product_attention`` gained arguments),
and tracing bakes in the trace-time device and turns the models' shape checks into constants. Bundling
the very source the model was trained with (read by :mod:`eegphase.export.bundle`) runs the same code as
eager mode on any device and batch size; the tests check the outputs match.
"""

from __future__ import annotations

import ast
import inspect
import io
import pprint
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import scipy.signal
import torch
from hydra.utils import get_object
from omegaconf import DictConfig, OmegaConf

from eegphase.engine.checkpoint import load_checkpoint
from eegphase.engine.errors import CheckpointError
from eegphase.export import runtime
from eegphase.export.bundle import ROOT_MODULE, BundleError, bundle_targets, model_sources
from eegphase.models import electrodes
from eegphase.models.predictor import Predictor, build_predictor, encoder_spec_of

N_CHANS, N_TIMES = 129, 200
SCORER_SFREQ = 100.0  # the rate of the scorer's windows (N_TIMES samples)
SUBMISSION_FILES = ("submission.py", "weights_challenge_1.pt", "weights_challenge_2.pt")


class ExportError(Exception):
    """The submission cannot be built; the message names the checkpoint, URI or config at fault."""


@dataclass(frozen=True)
class SubmissionModel:
    """One challenge's model: an engine checkpoint (``state["model"]`` = a Predictor) and its model config.

    ``input_scale`` multiplies the scorer's input first: the scorer feeds what MNE reads from the BDF
    (volts), so a model trained on ``preprocess.scale: 1e6`` data needs 1e6 here. ``use_ema`` takes the
    checkpoint's EMA weights (``state["ema"]["module"]``) instead of ``state["model"]``. ``sfreq``: the rate the
    model was trained on (``preprocess.sfreq``); another than the scorer's 100 Hz is resampled to inside the
    exported model (:func:`resample_spec`).
    """

    checkpoint: Path
    model_cfg: Mapping[str, Any]
    input_scale: float = 1.0
    use_ema: bool = False
    sfreq: float = SCORER_SFREQ
    source: str = field(default="", compare=False)  # where it came from (an MLflow URI), for messages

    def __post_init__(self) -> None:
        object.__setattr__(self, "checkpoint", Path(self.checkpoint))

    @property
    def where(self) -> str:
        return f"{self.source} ({self.checkpoint})" if self.source else str(self.checkpoint)


def normalize_model_cfg(model_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """A model config (a conf/model/*.yaml node, or the older ``{name, size, kwargs}`` form) -> the
    ``{name, encoder: {_target_, ...}, channel_adapter}`` form the submission rebuilds the Predictor from."""
    if isinstance(model_cfg, DictConfig):
        model_cfg = OmegaConf.to_container(model_cfg, resolve=True)
    cfg = dict(model_cfg)
    if "encoder" not in cfg and "name" not in cfg:
        raise ExportError(
            f"model config {cfg} has neither 'encoder' nor 'name' (expected a conf/model/*.yaml node, e.g. "
            "{'name': 'eegnex', 'encoder': {'_target_': ...}}, or a short name such as {'name': 'eegnex'})"
        )
    if not isinstance(cfg.get("kwargs") or {}, Mapping):
        raise ExportError(f"model config 'kwargs' must be a mapping, got {cfg['kwargs']!r}")
    try:
        encoder = encoder_spec_of(cfg)
    except ValueError as err:
        raise ExportError(f"model config {cfg} is invalid: {err}") from err
    return {
        "name": cfg.get("name"),
        "encoder": encoder,
        "channel_adapter": cfg.get("channel_adapter") or "zero_pad",
    }


def _pin_electrode_table(model_cfg: dict[str, Any]) -> dict[str, Any]:
    """Fix ``n_electrodes`` to the trained table size, so the scorer's MNE version (or none) cannot change it."""
    encoder = model_cfg["encoder"]
    params = inspect.signature(get_object(encoder["_target_"])).parameters
    if "n_electrodes" in params and encoder.get("n_electrodes") is None:  # built with the default table
        return {**model_cfg, "encoder": {**encoder, "n_electrodes": electrodes.n_electrodes()}}
    return model_cfg


def _misfit(expected: Mapping[str, torch.Tensor], weights: Mapping[str, Any], shown: int = 3) -> str:
    """'' when ``weights`` fits ``expected`` key for key and shape for shape, else a short account of why not."""
    missing = [k for k in expected if k not in weights]
    unexpected = [k for k in weights if k not in expected]
    shapes = [
        f"{k} {tuple(weights[k].shape)} vs {tuple(v.shape)}"
        for k, v in expected.items()
        if k in weights and (not isinstance(weights[k], torch.Tensor) or weights[k].shape != v.shape)
    ]
    problems = []
    for label, items in (
        ("missing keys", missing),
        ("unexpected keys", unexpected),
        ("shape (checkpoint vs config)", shapes),
    ):
        if items:
            more = f" and {len(items) - shown} more" if len(items) > shown else ""
            problems.append(f"{len(items)} {label}: {', '.join(items[:shown])}{more}")
    return "; ".join(problems)


def load_predictor(model: SubmissionModel) -> tuple[Predictor, dict[str, Any]]:
    """The eval-mode Predictor with the checkpoint's weights, and the config the submission rebuilds it from."""
    try:
        state = load_checkpoint(model.checkpoint)
    except CheckpointError as err:
        raise ExportError(f"{model.where}: {err}") from err
    try:
        weights = state["ema"]["module"] if model.use_ema else state["model"]
    except (KeyError, TypeError) as err:
        key = "ema.module" if model.use_ema else "model"
        raise ExportError(f"checkpoint {model.where} has no {key!r} state dict") from err
    model_cfg = normalize_model_cfg(model.model_cfg)
    try:
        predictor = build_predictor(model_cfg, n_outputs=1)
    except (TypeError, ValueError) as err:
        raise ExportError(f"model config {model_cfg} (for {model.where}) is invalid: {err}") from err
    misfit = _misfit(predictor.state_dict(), weights)
    if misfit:
        raise ExportError(f"checkpoint {model.where} does not fit model config {model_cfg}: {misfit}")
    predictor.load_state_dict(weights)
    predictor.eval()
    n_times = round(N_TIMES * model.sfreq / SCORER_SFREQ)
    with torch.no_grad():
        out = predictor(torch.zeros(2, N_CHANS, n_times) * model.input_scale)
    if out.shape != (2, 1):
        raise ExportError(f"{model.where}: the model maps (2, {N_CHANS}, {n_times}) to {tuple(out.shape)}")
    return predictor, _pin_electrode_table(model_cfg)


def resample_spec(sfreq: float) -> dict[str, Any] | None:
    """How the submission brings the scorer's 100 Hz windows to a model's ``sfreq``: None at 100 Hz, else
    ``{"up", "down", "taps"}`` for a polyphase resampling by up/down with the filter that preprocessing's
    ``data.resample.resample_poly`` (scipy's ``resample_poly``) applies, so a 200 Hz model reads the scorer's
    windows as (band-limited) 200 Hz windows; the preprocessing band-pass (0.5-50 Hz) leaves nothing above the
    100 Hz data's Nyquist frequency to miss. Why inside the model: the scorer feeds 100 Hz only.
    """
    from fractions import Fraction

    ratio = Fraction(sfreq / SCORER_SFREQ).limit_denominator(1000)
    if ratio == 1:
        return None
    up, down = ratio.numerator, ratio.denominator
    max_rate = max(up, down)
    half_len = 10 * max_rate  # scipy's default filter for resample_poly
    taps = scipy.signal.firwin(2 * half_len + 1, 1.0 / max_rate, window=("kaiser", 5.0)) * up
    return {"up": up, "down": down, "taps": [float(t) for t in taps]}


def _state_dict_bytes(predictor: Predictor) -> bytes:
    """Plain float32 tensors (own storages, so no view drags in a larger buffer)."""
    state = {
        k: (v.float() if v.is_floating_point() else v).detach().cpu().clone().contiguous()
        for k, v in predictor.state_dict().items()
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _string_literal(text: str) -> str:
    """A raw triple-quoted literal when it round-trips (readable in the zip), else ``repr``."""
    literal = f"r'''{text}'''"
    try:
        if ast.literal_eval(literal) == text:
            return literal
    except SyntaxError:
        pass
    return repr(text)


def render_submission(specs: Mapping[int, Mapping[str, Any]], sources: Mapping[str, str]) -> str:
    """``submission.py``: the runtime's source, then the bundled model sources and per-challenge specs."""
    parts = [
        inspect.getsource(runtime),
        "\n# ---- generated by python -m eegphase.export: the eegphase model source it was trained with ----\n",
    ]
    parts += [f"\n_SOURCES[{key!r}] = {_string_literal(source)}\n" for key, source in sources.items()]
    models = pprint.pformat(dict(specs), width=100, sort_dicts=False)
    if ast.literal_eval(models) != specs:
        raise ExportError(f"the model specs hold values that are not plain Python literals: {models}")
    parts.append(f"\n_MODELS.update({models})\n")
    return "".join(parts)


def build_submission(out_zip: str | Path, challenge1: SubmissionModel, challenge2: SubmissionModel) -> Path:
    """Write the flat challenge zip (``SUBMISSION_FILES``) to ``out_zip`` and return its path."""
    files: dict[str, bytes] = {}
    specs: dict[int, dict[str, Any]] = {}
    roots = [ROOT_MODULE]
    for challenge, model in ((1, challenge1), (2, challenge2)):
        predictor, model_cfg = load_predictor(model)
        weights = f"weights_challenge_{challenge}.pt"
        files[weights] = _state_dict_bytes(predictor)
        try:
            encoder, modules = bundle_targets(model_cfg["encoder"])
        except BundleError as err:
            raise ExportError(f"{model.where}: {err}") from err
        roots += modules
        specs[challenge] = {
            "model_cfg": {**model_cfg, "encoder": encoder},
            "n_outputs": 1,
            "task": "regression",
            "input_scale": float(model.input_scale),
            "resample": resample_spec(model.sfreq),
            "weights": weights,
            "trained_from": model.source or str(model.checkpoint),
        }
    files["submission.py"] = render_submission(specs, model_sources(roots)).encode()
    out_zip = Path(out_zip)
    out_zip.parent.mkdir(parents=True, exist_ok=True)
    tmp = out_zip.with_name(f".{out_zip.name}.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in SUBMISSION_FILES:
            archive.writestr(name, files[name])
    tmp.replace(out_zip)
    return out_zip
