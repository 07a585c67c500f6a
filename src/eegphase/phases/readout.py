"""The head's last layer refitted in closed form on the trained encoder's features (the linear-probe half of
LP-FT), kept only when it scores better on the validation windows than the layer AdamW trained.

Why: at the budgets a CPU run affords (make run: 120 end-to-end steps per task), the trained head reads out little of
what the encoder's features carry. On the synthetic challenge-2 data (94 training subjects, a subject-level
target), after 150 steps the head trained with the model scored validation NRMSE 0.976 (test 1.007, its
predictions spread 0.04 of the target's), while a ridge regression on the same model's features scored 0.931
(test 0.939). A from-scratch model and an initialised one are refitted alike, so the comparison stays fair.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from eegphase.engine.loop import move_to_device
from eegphase.objectives.metrics import balanced_accuracy, nrmse
from eegphase.objectives.reference import fit_logistic_reference, fit_ridge_reference

log = logging.getLogger(__name__)


def last_linear(model: nn.Module) -> nn.Linear:
    """The layer a refit replaces: the last module of ``model.head.net``, which must be an ``nn.Linear``."""
    layer = model.head.net[-1]
    if not isinstance(layer, nn.Linear):
        raise TypeError(f"readout=refit needs a head ending in nn.Linear, got {type(layer).__name__}")
    return layer


Autocast = Callable[[], AbstractContextManager]


@dataclass
class Readout:
    """A refit's validation scores (trained vs refitted layer), whether the refitted layer was kept, and the
    kept layer's outputs on the validation loader's windows (so scoring need not encode them again)."""

    scores: dict[str, float]
    kept: bool
    val_outputs: np.ndarray


@torch.no_grad()
def head_inputs(
    model: nn.Module, data_loader, device: torch.device, autocast: Autocast = contextlib.nullcontext
) -> tuple[np.ndarray, np.ndarray]:
    """What the head's last layer sees for each window (eval mode, float64) and the windows' first target.
    The encoder runs under ``autocast`` (the training's precision), the head in float32."""
    model.eval()
    before_last = model.head.net[:-1]
    features, targets = [], []
    for batch in data_loader:
        batch = move_to_device(batch, device)
        with autocast():
            encoded = model.encoder(batch["x"])
        features.append(before_last(encoded.float()).double().cpu())
        targets.append(batch["y"][:, 0].double().cpu())
    return torch.cat(features).numpy(), torch.cat(targets).numpy()


def refit_readout(
    model: nn.Module,
    kind: str,
    short: str,
    train_loader,
    val_loader,
    n_outputs: int,
    device: torch.device,
    autocast: Autocast = contextlib.nullcontext,
    always: bool = False,
) -> Readout:
    """Refit the last head layer on ``train_loader``'s windows (penalty tuned on ``val_loader``'s); keep it if
    its validation score beats the trained layer's, or ``always`` (no layer was trained: a linear probe). Returns
    both validation scores (metric names carry the task's ``short`` name), whether the refitted layer was kept
    and its outputs on the validation windows."""
    layer = last_linear(model)
    x_train, y_train = head_inputs(model, train_loader, device, autocast)
    x_val, y_val = head_inputs(model, val_loader, device, autocast)
    trained = layer.weight.detach().double().cpu().numpy(), layer.bias.detach().double().cpu().numpy()
    trained_val = x_val @ trained[0].T + trained[1]
    if kind == "regression":
        fit = fit_ridge_reference(x_train, y_train, x_val, y_val)
        coef = fit.coef[:, None] / fit.scale[:, None]
        intercept = np.array([fit.intercept - (fit.mean / fit.scale) @ fit.coef])
        before, after = nrmse(y_val, trained_val[:, 0]), fit.val_nrmse
        better = after < before
        names = (f"val_nrmse_{short}_trained_head", f"val_nrmse_{short}_refit_head")
    else:
        fit = fit_logistic_reference(x_train, y_train, x_val, y_val, n_classes=n_outputs)
        coef = fit.coef / fit.scale[:, None]
        intercept = fit.intercept - (fit.mean / fit.scale) @ fit.coef
        before, after = balanced_accuracy(y_val, trained_val.argmax(axis=1)), fit.val_balanced_accuracy
        better = after > before
        names = (f"val_balanced_accuracy_{short}_trained_head", f"val_balanced_accuracy_{short}_refit_head")
    better = better or always
    kept_layer = (coef.T, intercept) if better else trained
    if better:
        with torch.no_grad():
            layer.weight.copy_(torch.as_tensor(coef.T, dtype=layer.weight.dtype))
            layer.bias.copy_(torch.as_tensor(intercept, dtype=layer.bias.dtype))
    log.info(
        "readout: trained head %s %.4f, refitted %s %.4f (%d training windows): %s",
        names[0],
        before,
        names[1],
        after,
        len(y_train),
        "refitted head kept" if better else "trained head kept",
    )
    scores = {names[0]: float(before), names[1]: float(after), f"readout_refit_kept_{short}": float(better)}
    return Readout(scores, better, x_val @ kept_layer[0].T + kept_layer[1])
