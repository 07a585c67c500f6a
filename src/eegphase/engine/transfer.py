"""Phase transitions: load a pretrained encoder into a new model, and freeze it for the first epochs.

A checkpoint is a plain dict whose "model" entry is a state dict (a bare state dict of tensors is accepted
too, e.g. exported weights). Keys written by a compiled or DDP-wrapped model carry ``_orig_mod.`` /
``module.``; those are stripped. The encoder may sit under a prefix such as ``encoder.``. A LaBraM state dict
from braindecode (``braindecode.models.Labram``) or from the paper's code (fine-tuned, or a pretraining
checkpoint's ``student.``) is recognised by its key names and mapped onto ours
(:mod:`eegphase.models.labram_braindecode`); what does not map is reported as unexpected.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from eegphase.engine.checkpoint import load_checkpoint
from eegphase.engine.distributed import unwrap_model
from eegphase.engine.errors import CheckpointError
from eegphase.models.labram_braindecode import foreign_flavour, to_eegphase

log = logging.getLogger(__name__)

_WRAPPER_PREFIXES = ("module.", "_orig_mod.")
AUTO_PREFIX = "encoder."


@dataclass
class LoadReport:
    """What happened to each key: ``loaded`` into the model, ``missing`` from the checkpoint, ``unexpected``
    in it, or ``skipped_shape`` (key -> (checkpoint shape, model shape)) when shape mismatches are allowed."""

    loaded: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    unexpected: list[str] = field(default_factory=list)
    skipped_shape: dict[str, tuple[tuple[int, ...], tuple[int, ...]]] = field(default_factory=dict)


def clean_key(key: str) -> str:
    """Drop the ``module.`` (DDP) prefix and every ``_orig_mod.`` (torch.compile) component of a key."""
    while key.startswith(_WRAPPER_PREFIXES):
        key = key.removeprefix("module.").removeprefix("_orig_mod.")
    return key.replace("._orig_mod.", ".")


def _state_dict_of(checkpoint: Mapping[str, object], path: Path) -> dict[str, torch.Tensor]:
    if "model" in checkpoint:
        state = checkpoint["model"]
        if not isinstance(state, Mapping):
            raise CheckpointError(
                f"checkpoint {path}: 'model' holds a {type(state).__name__}, not a state dict"
            )
    elif checkpoint and all(isinstance(v, torch.Tensor) for v in checkpoint.values()):
        state = checkpoint
    else:
        raise CheckpointError(
            f"checkpoint {path} has no 'model' state dict (keys: {sorted(map(str, checkpoint))[:10]})"
        )
    not_tensors = [k for k, v in state.items() if not isinstance(v, torch.Tensor)]
    if not_tensors:
        raise CheckpointError(
            f"checkpoint {path}: state-dict entries that are not tensors: {not_tensors[:5]}"
        )
    return {clean_key(str(k)): v for k, v in state.items()}


def _select_prefix(state: dict[str, torch.Tensor], prefix: str | None, path: Path) -> dict[str, torch.Tensor]:
    if prefix is None:
        prefix = AUTO_PREFIX if any(k.startswith(AUTO_PREFIX) for k in state) else ""
    if not prefix:
        return state
    selected = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    if not selected:
        raise CheckpointError(
            f"checkpoint {path} has no key starting with {prefix!r} (first keys: {sorted(state)[:5]})"
        )
    return selected


def load_encoder_weights(
    model: nn.Module,
    path: str | Path,
    strict_shapes: bool = True,
    prefix: str | None = None,
    *,
    allow_shape_mismatch: bool = False,
    model_name: str | None = None,
    max_missing_fraction: float = 0.5,
) -> LoadReport:
    """Load the encoder weights found in the checkpoint at ``path`` into ``model``; return what was loaded.

    ``prefix``: the encoder's key prefix in the checkpoint ("encoder."), "" for the whole state dict, None
    to use "encoder." when such keys exist and the whole state dict otherwise. A shape mismatch raises a
    CheckpointError naming the key and both shapes, unless ``strict_shapes=False`` or
    ``allow_shape_mismatch=True``, in which case those keys are skipped and reported. A few missing and
    unexpected keys are returned and logged; weights that do not fit the model raise a CheckpointError naming
    the checkpoint and the model (its class, and ``model_name``, the config's name, when given): none loaded,
    or more than ``max_missing_fraction`` of the model's parameter tensors absent from the checkpoint (those
    skipped for their shape count as absent unless ``allow_shape_mismatch``). Nothing is loaded then.
    """
    path = Path(path)
    try:
        checkpoint = load_checkpoint(path, map_location="cpu")
    except CheckpointError:
        raise
    except Exception as err:  # arbitrary bytes can make the weights-only unpickler fail in many ways
        raise CheckpointError(f"{path} is not a readable checkpoint: {type(err).__name__}: {err}") from err
    state = _state_dict_of(checkpoint, path)
    target = unwrap_model(model)
    own = target.state_dict()
    flavour = foreign_flavour(state)
    unmapped: list[str] = []
    if flavour is None:
        state = _select_prefix(state, prefix, path)
    else:
        state, unmapped = _from_foreign_labram(state, flavour, target, path)
    report = LoadReport()
    usable: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        if key not in own:
            report.unexpected.append(key)
        elif value.shape != own[key].shape:
            if strict_shapes and not allow_shape_mismatch:
                raise CheckpointError(
                    f"checkpoint {path}: shape mismatch for {key!r}: "
                    f"checkpoint {tuple(value.shape)} vs model {tuple(own[key].shape)}"
                )
            report.skipped_shape[key] = (tuple(value.shape), tuple(own[key].shape))
        else:
            usable[key] = value
    report.unexpected += unmapped
    report.missing = [k for k in own if k not in usable and k not in report.skipped_shape]
    report.loaded = sorted(usable)
    _check_fit(target, path, report, own, allow_shape_mismatch, model_name, max_missing_fraction)
    target.load_state_dict(usable, strict=False)
    log.info("loaded %d tensors from %s", len(report.loaded), path)
    if report.missing:
        log.warning("%d keys missing from %s: %s", len(report.missing), path, report.missing[:20])
    if report.unexpected:
        log.warning("%d unexpected keys in %s: %s", len(report.unexpected), path, report.unexpected[:20])
    for key, (theirs, ours) in report.skipped_shape.items():
        log.warning("skipped %s from %s: checkpoint shape %s, model shape %s", key, path, theirs, ours)
    return report


def _from_foreign_labram(
    state: dict[str, torch.Tensor], flavour: str, target: nn.Module, path: Path
) -> tuple[dict[str, torch.Tensor], list[str]]:
    """A braindecode / official LaBraM state dict under our key names (a bare LaBraM's, or ``encoder.``'s)."""
    own = target.state_dict()
    prefix = next((p for p in ("", AUTO_PREFIX) if p + "pos_embed.spatial" in own), None)
    if prefix is None:
        raise CheckpointError(
            f"checkpoint {path} holds a {flavour} LaBraM, but the model is no LaBraM (no 'pos_embed.spatial'); "
            "initialise a model=labram_* config from it"
        )
    ours = {k.removeprefix(prefix): v for k, v in own.items() if k.startswith(prefix)}
    mapped, unmapped = to_eegphase(state, ours)
    log.info("checkpoint %s: a %s LaBraM, %d tensors mapped onto ours", path, flavour, len(mapped))
    labram = target.get_submodule(prefix.rstrip("."))
    if any(k.endswith("fc_norm.weight") for k in state) and getattr(labram, "final_norm", None) != "pooled":
        log.warning(
            "checkpoint %s normalises after mean pooling (fc_norm); the model normalises the tokens "
            "(model.encoder.final_norm=pooled computes the checkpoint's function)",
            path,
        )
    return {prefix + k: v for k, v in mapped.items()}, unmapped


def _check_fit(
    target: nn.Module,
    path: Path,
    report: LoadReport,
    own: Mapping[str, torch.Tensor],
    allow_shape_mismatch: bool,
    model_name: str | None,
    max_missing_fraction: float,
) -> None:
    """Raise when the checkpoint's weights leave (most of) the model at its random initialisation."""
    params = [name for name, _ in target.named_parameters() if name in own]
    absent = set(report.missing) | (set() if allow_shape_mismatch else set(report.skipped_shape))
    absent_params = [name for name in params if name in absent]
    if report.loaded and len(absent_params) <= max_missing_fraction * len(params):
        return
    model = type(target).__name__ + (f" (model={model_name})" if model_name else "")
    loaded_params = len(params) - len(absent_params)
    details = (
        f"loaded {loaded_params} of {len(params)} parameter tensors ({len(report.loaded)} tensors in all), "
        f"missing {len(absent_params)} of {len(params)}"
    )
    if report.skipped_shape:
        details += f", {len(report.skipped_shape)} of another shape"
    raise CheckpointError(
        f"checkpoint {path} does not fit {model}: {details}; the checkpoint's keys "
        f"{sorted(report.unexpected)[:5]}{'...' if len(report.unexpected) > 5 else ''} vs the model's "
        f"{sorted(absent_params)[:5]}{'...' if len(absent_params) > 5 else ''}; initialise from a checkpoint "
        "of the same architecture (or leave init_from unset)"
    )


def set_requires_grad(module: nn.Module, flag: bool) -> None:
    """Freeze (False) or unfreeze (True) every parameter of ``module``."""
    for param in module.parameters():
        param.requires_grad_(flag)


def freeze_unused_mask_token(encoder: nn.Module) -> None:
    """Freeze the mask token of an encoder that never masks (fine-tuning, contrastive, the tokenizer).

    The token gets no gradient there anyway; frozen, DDP does not wait for it (no need for
    ``find_unused_parameters``), and its pretrained value travels on unchanged.
    """
    token = getattr(encoder, "mask_token", None)
    if isinstance(token, nn.Parameter):
        token.requires_grad_(False)
