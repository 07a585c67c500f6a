"""Per-target losses chosen by name (MSE, L1, Huber, cross-entropy), all ignoring missing targets.

A target is missing when it is NaN (regression) or NaN / negative (class labels). The reduction is a
masked mean written without data-dependent branches, so a batch whose targets are all missing gives an
exact zero with a finite (zero) gradient instead of NaN, and the code stays friendly to torch.compile.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

REGRESSION_LOSSES = ("mse", "l1", "huber")
CLASSIFICATION_LOSSES = ("ce", "cross_entropy")


def masked_mean(values: torch.Tensor, valid: torch.Tensor) -> torch.Tensor:
    """Mean of ``values`` where ``valid``; exactly 0 (not NaN) when nothing is valid."""
    picked = torch.where(valid, values, torch.zeros_like(values))
    return picked.sum() / valid.sum().clamp_min(1).to(values.dtype)


def _as_column(pred: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Accept (B,), (B, 1) or matching shapes; a (B, 1) prediction against a (B,) target is squeezed."""
    if pred.dim() == target.dim() + 1 and pred.shape[-1] == 1:
        pred = pred.squeeze(-1)
    if pred.shape != target.shape:
        raise ValueError(
            f"prediction shape {tuple(pred.shape)} does not match target shape {tuple(target.shape)}"
        )
    return pred, target


def masked_regression_loss(
    pred: torch.Tensor, target: torch.Tensor, name: str = "mse", huber_delta: float = 1.0
) -> torch.Tensor:
    """MSE / L1 / Huber over the targets that are not NaN, in float32 whatever the prediction's dtype (a bf16
    target would round response times near 1.2 s to 0.008 s, while evaluation runs in float32)."""
    pred, target = _as_column(pred, target)
    dtype = torch.promote_types(pred.dtype, torch.float32)
    pred, target = pred.to(dtype), target.to(dtype)
    valid = ~torch.isnan(target)
    safe_target = torch.where(valid, target, pred.detach())
    if name == "mse":
        per_item = F.mse_loss(pred, safe_target, reduction="none")
    elif name == "l1":
        per_item = F.l1_loss(pred, safe_target, reduction="none")
    elif name == "huber":
        per_item = F.huber_loss(pred, safe_target, reduction="none", delta=huber_delta)
    else:
        raise ValueError(f"unknown regression loss {name!r}; expected one of {REGRESSION_LOSSES}")
    return masked_mean(per_item, valid)


def balanced_class_weights(labels, n_classes: int) -> torch.Tensor:
    """Per-class weights ``n / (n_classes_seen * count)`` from the labels of a training split (NaN and
    negative labels ignored): each class then weighs as much in the loss; a class absent from the labels
    gets weight 0."""
    labels = torch.tensor(np.array(labels, dtype=np.float64)).flatten()
    labels = labels[~torch.isnan(labels) & (labels >= 0)].long()
    counts = torch.bincount(labels, minlength=n_classes)[:n_classes].double()
    seen = int((counts > 0).sum())
    if seen == 0:
        raise ValueError("no labelled rows: cannot weight classes")
    weights = torch.where(counts > 0, counts.sum() / (seen * counts.clamp_min(1)), torch.zeros_like(counts))
    return weights.float()


def masked_cross_entropy(
    logits: torch.Tensor, target: torch.Tensor, weight: torch.Tensor | None = None
) -> torch.Tensor:
    """Cross-entropy over labelled rows; ``target`` holds class indices, NaN or negative when missing.

    Float targets (e.g. sex stored as 0.0 / 1.0 / NaN in a table column) are accepted as well as integers.
    ``weight`` (per class, e.g. ``balanced_class_weights``) gives a weighted mean, as torch's weighted
    cross-entropy does.
    """
    if logits.dim() != 2 or target.dim() != 1 or logits.shape[0] != target.shape[0]:
        raise ValueError(
            f"cross-entropy expects logits (B, C) and targets (B,), got {tuple(logits.shape)} and "
            f"{tuple(target.shape)}"
        )
    valid = ~torch.isnan(target) & (target >= 0) if target.is_floating_point() else target >= 0
    n_classes = logits.shape[1]
    safe_target = torch.where(valid, target, torch.zeros_like(target)).long()
    if bool(((safe_target >= n_classes) & valid).any()):
        bad = safe_target[(safe_target >= n_classes) & valid][0].item()
        raise ValueError(f"class label {bad} is out of range for {n_classes} classes")
    if weight is None:
        return masked_mean(F.cross_entropy(logits, safe_target, reduction="none"), valid)
    weight = weight.to(device=logits.device, dtype=logits.dtype)
    per_item = F.cross_entropy(logits, safe_target, weight=weight, reduction="none")
    row_weight = torch.where(valid, weight[safe_target], torch.zeros_like(per_item))
    return torch.where(valid, per_item, torch.zeros_like(per_item)).sum() / row_weight.sum().clamp_min(1e-12)


def loss_by_name(name: str, huber_delta: float = 1.0) -> LossFn:
    """The NaN-masked loss called ``name`` (mse, l1, huber, ce / cross_entropy) as ``fn(pred, target)``."""
    key = name.lower()
    if key in REGRESSION_LOSSES:

        def regression(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
            return masked_regression_loss(pred, target, key, huber_delta)

        return regression
    if key in CLASSIFICATION_LOSSES:
        return masked_cross_entropy
    raise ValueError(f"unknown loss {name!r}; expected one of {REGRESSION_LOSSES + CLASSIFICATION_LOSSES}")
