"""EEG Foundation Challenge metrics: NRMSE per challenge, the overall score, balanced accuracy.

Inputs may be numpy arrays, lists or torch tensors; everything is computed in float64 numpy so that the
numbers match the challenge's own scoring code.
"""

from __future__ import annotations

from typing import Any

import numpy as np

CHALLENGE1_WEIGHT = 0.3
CHALLENGE2_WEIGHT = 0.7


def _to_numpy(values: Any, name: str) -> np.ndarray:
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"{name} is empty: cannot compute a metric on no samples")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{name} holds {int(np.sum(~np.isfinite(array)))} NaN or infinite values")
    return array


def _pair(y_true: Any, y_pred: Any) -> tuple[np.ndarray, np.ndarray]:
    true = _to_numpy(y_true, "y_true")
    pred = _to_numpy(y_pred, "y_pred")
    if true.shape != pred.shape:
        raise ValueError(f"y_true has {true.size} values but y_pred has {pred.size}")
    return true, pred


def rmse(y_true: Any, y_pred: Any) -> float:
    true, pred = _pair(y_true, y_pred)
    return float(np.sqrt(np.mean((true - pred) ** 2)))


def nrmse(y_true: Any, y_pred: Any) -> float:
    """RMSE / std(y_true) with the population std (ddof=0); predicting the mean scores 1.0."""
    true, pred = _pair(y_true, y_pred)
    spread = float(np.std(true))
    if spread == 0.0:
        raise ValueError(
            f"y_true has zero variance (all {true.size} values equal {true[0]}): NRMSE is undefined"
        )
    return float(np.sqrt(np.mean((true - pred) ** 2))) / spread


def challenge_score(c1: float, c2: float) -> float:
    """Overall challenge score 0.3 * C1 + 0.7 * C2 (both NRMSE; lower is better)."""
    for name, value in (("c1", c1), ("c2", c2)):
        if not np.isfinite(value):
            raise ValueError(f"{name} is not finite: {value}")
    return CHALLENGE1_WEIGHT * float(c1) + CHALLENGE2_WEIGHT * float(c2)


def balanced_accuracy(y_true: Any, y_pred: Any) -> float:
    """Mean per-class recall over the classes present in ``y_true`` (as scikit-learn's default)."""
    true, pred = _pair(y_true, y_pred)
    recalls = [float(np.mean(pred[true == label] == label)) for label in np.unique(true)]
    return float(np.mean(recalls))


def codebook_stats(counts: Any) -> dict[str, float]:
    """Health of a tokenizer from its code counts over some windows: the fraction of codes used, the
    perplexity (exp of the code entropy: the number of equally used codes it is worth) and the share of the
    most frequent code. A collapsed codebook shows low usage and perplexity and a large top share."""
    counts = _to_numpy(counts, "code counts")
    total = counts.sum()
    if total <= 0:
        raise ValueError("code counts are all zero: no windows were encoded")
    p = counts[counts > 0] / total
    return {
        "codebook_usage": float((counts > 0).mean()),
        "codebook_perplexity": float(np.exp(-(p * np.log(p)).sum())),
        "codebook_top_share": float(p.max()),
    }


def auroc(y_true: Any, scores: Any) -> float:
    """Area under the ROC curve from class scores (rank form, ties averaged).

    Binary: ``scores`` is the positive class's score (n,) or the class probabilities (n, 2). More classes:
    the macro mean of one-vs-rest AUROCs over the classes present, from probabilities (n, n_classes).
    NaN when ``y_true`` holds a single class.
    """
    true = _to_numpy(y_true, "y_true")
    scores = np.asarray(scores.detach().cpu().numpy() if hasattr(scores, "detach") else scores, np.float64)
    if scores.ndim == 1:
        scores = np.stack([-scores, scores], axis=1)
    if scores.shape[0] != true.size:
        raise ValueError(f"y_true has {true.size} values but scores has {scores.shape[0]} rows")
    classes = np.unique(true).astype(int)
    if len(classes) < 2:
        return float("nan")
    if scores.shape[1] == 2 and len(classes) == 2:
        classes = classes[1:]  # binary: the positive class only
    return float(np.mean([_binary_auroc(true == c, scores[:, c]) for c in classes]))


def _binary_auroc(positive: np.ndarray, score: np.ndarray) -> float:
    from scipy.stats import rankdata

    ranks = rankdata(score)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def predicted_class_share(y_pred: Any) -> float:
    """Share of the most often predicted class: near 1 when a classifier predicts one class for everything."""
    pred = _to_numpy(y_pred, "y_pred")
    return float(np.unique(pred, return_counts=True)[1].max() / pred.size)


def group_means(values: Any, groups: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean of ``values`` (n,) or (n, k) per group, groups in sorted order; returns (groups, means)."""
    values = np.asarray(values, np.float64)
    keys, inverse = np.unique(np.asarray(groups).astype(str), return_inverse=True)
    sums = np.zeros((len(keys), *values.shape[1:]))
    np.add.at(sums, inverse, values)
    counts = np.bincount(inverse, minlength=len(keys)).reshape(-1, *([1] * (values.ndim - 1)))
    return keys, sums / counts


def constant_within(y_true: Any, groups: Any) -> bool:
    """Whether ``y_true`` takes one value inside each group (a target of that group, not of its parts)."""
    frame = np.stack([np.asarray(groups).astype(str), np.asarray(y_true, np.float64).astype(str)], axis=1)
    return len(np.unique(frame, axis=0)) == len(np.unique(frame[:, 0]))


def grouped_balanced_accuracy(y_true: Any, proba: Any, groups: Any) -> float:
    """Balanced accuracy of the argmax of the mean window probabilities of each group (recording, subject);
    the group's label must be the same for all its windows (``constant_within``)."""
    if not constant_within(y_true, groups):
        raise ValueError("the label varies inside a group: a group-level accuracy is undefined")
    _, true = group_means(y_true, groups)
    _, mean_proba = group_means(proba, groups)
    return balanced_accuracy(true, mean_proba.argmax(axis=1))


def grouped_nrmse(y_true: Any, y_pred: Any, groups: Any) -> float:
    """NRMSE of the group means (e.g. one prediction per subject: the mean of its windows' predictions)."""
    _, true = group_means(y_true, groups)
    _, pred = group_means(y_pred, groups)
    return nrmse(true, pred)
