"""A simple reference score: a linear model on log band power, trained on train, tuned on val, scored on test.

It tells whether a dataset's targets are decodable at all and what a model should beat: per channel, the log
power in five bands (delta, theta, alpha, beta, gamma) of each window, standardised, then closed-form ridge
(regression) or class-balanced L2 logistic regression (classification) with the penalty chosen on the
validation split. Numpy (and scipy's L-BFGS); reads the same windows as training does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eegphase.data.datasets import TARGETS, make_dataset
from eegphase.data.manifest import Manifest
from eegphase.data.splits import SplitConfig
from eegphase.objectives.metrics import balanced_accuracy, nrmse

BANDS: dict[str, tuple[float, float]] = {
    "delta": (1.0, 4.0),
    "theta": (4.0, 8.0),
    "alpha": (8.0, 13.0),
    "beta": (13.0, 30.0),
    "gamma": (30.0, 45.0),
}
POWER_FLOOR = 1e-6  # uV^2/bin; keeps flat channels (the Cz reference) finite in log


def band_power_features(
    x: np.ndarray, sfreq: float, bands: Mapping[str, tuple[float, float]] = BANDS
) -> np.ndarray:
    """(n, channels, times) windows -> (n, channels * n_bands) log mean power per band (Hann periodogram)."""
    x = np.asarray(x, dtype=np.float32)
    if x.ndim != 3:
        raise ValueError(f"band_power_features expects (n, channels, times), got shape {x.shape}")
    n_times = x.shape[-1]
    taper = np.hanning(n_times).astype(np.float32)
    centred = x - x.mean(axis=-1, keepdims=True)
    spectrum = np.abs(np.fft.rfft(centred * taper, axis=-1)) ** 2
    freqs = np.fft.rfftfreq(n_times, 1.0 / sfreq)
    powers = []
    for name, (low, high) in bands.items():
        mask = (freqs >= low) & (freqs < high)
        if not mask.any():
            raise ValueError(
                f"band {name} ({low}-{high} Hz) holds no frequency bin at {sfreq} Hz, {n_times} samples"
            )
        powers.append(spectrum[..., mask].mean(axis=-1))
    return np.log(np.stack(powers, axis=-1) + POWER_FLOOR).reshape(x.shape[0], -1).astype(np.float32)


@dataclass(frozen=True)
class RidgeReference:
    """A fitted ridge predictor over standardised features."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    alpha: float
    val_nrmse: float

    def predict(self, features: np.ndarray) -> np.ndarray:
        return ((np.asarray(features, np.float64) - self.mean) / self.scale) @ self.coef + self.intercept


def fit_ridge_reference(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    alphas: Sequence[float] | None = None,
) -> RidgeReference:
    """Closed-form ridge (one eigendecomposition); the penalty with the lowest validation NRMSE wins.

    ``alphas`` default to ``n_train * logspace(-4, 2, 25)``: a range wide enough for standardised features.
    """
    x_train = np.asarray(x_train, np.float64)
    y_train = np.asarray(y_train, np.float64)
    mean = x_train.mean(axis=0)
    scale = x_train.std(axis=0)
    scale[scale < 1e-8] = 1.0  # constant features (a flat reference channel) carry nothing
    z = (x_train - mean) / scale
    intercept = float(y_train.mean())
    eigvals, eigvecs = np.linalg.eigh(z.T @ z)
    projected = eigvecs.T @ (z.T @ (y_train - intercept))
    z_val = (np.asarray(x_val, np.float64) - mean) / scale
    grid = len(z) * np.logspace(-4, 2, 25) if alphas is None else np.asarray(alphas, np.float64)
    best = None
    for alpha in grid:
        coef = eigvecs @ (projected / (np.clip(eigvals, 0.0, None) + alpha))
        score = nrmse(y_val, z_val @ coef + intercept)
        if best is None or score < best[0]:
            best = (score, float(alpha), coef)
    score, alpha, coef = best
    return RidgeReference(mean, scale, coef, intercept, alpha, score)


@dataclass(frozen=True)
class LogisticReference:
    """A fitted multinomial logistic regression over standardised features."""

    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray  # (features, classes)
    intercept: np.ndarray  # (classes,)
    alpha: float
    val_balanced_accuracy: float

    def predict_proba(self, features: np.ndarray) -> np.ndarray:
        logits = ((np.asarray(features, np.float64) - self.mean) / self.scale) @ self.coef + self.intercept
        logits -= logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)


def _fit_logistic(z: np.ndarray, y: np.ndarray, n_classes: int, sample_weight: np.ndarray, alpha: float):
    from scipy.optimize import minimize

    n, d = z.shape
    onehot = np.eye(n_classes)[y]
    total = sample_weight.sum()

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        coef, intercept = params[: d * n_classes].reshape(d, n_classes), params[d * n_classes :]
        logits = z @ coef + intercept
        logits -= logits.max(axis=1, keepdims=True)
        log_p = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        value = -(sample_weight * (onehot * log_p).sum(axis=1)).sum() / total + 0.5 * alpha * (coef**2).sum()
        residual = sample_weight[:, None] * (np.exp(log_p) - onehot) / total
        grad = np.concatenate([(z.T @ residual + alpha * coef).ravel(), residual.sum(axis=0)])
        return float(value), grad

    start = np.zeros(d * n_classes + n_classes)
    params = minimize(loss, start, jac=True, method="L-BFGS-B", options={"maxiter": 300}).x
    return params[: d * n_classes].reshape(d, n_classes), params[d * n_classes :]


def fit_logistic_reference(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_val: np.ndarray,
    y_val: np.ndarray,
    n_classes: int | None = None,
    alphas: Sequence[float] = (1.0, 0.1, 0.01, 0.001),
) -> LogisticReference:
    """L2 logistic regression with class-balanced sample weights (so that it cannot win by predicting the
    majority class); the penalty with the best validation balanced accuracy wins (the stronger one on ties)."""
    x_train = np.asarray(x_train, np.float64)
    y = np.asarray(y_train).astype(int)
    n_classes = int(y.max()) + 1 if n_classes is None else int(n_classes)
    mean = x_train.mean(axis=0)
    scale = x_train.std(axis=0)
    scale[scale < 1e-8] = 1.0
    z = (x_train - mean) / scale
    counts = np.bincount(y, minlength=n_classes).astype(float)
    sample_weight = (len(y) / (np.count_nonzero(counts) * counts))[y]
    z_val = (np.asarray(x_val, np.float64) - mean) / scale
    best = None
    for alpha in alphas:
        coef, intercept = _fit_logistic(z, y, n_classes, sample_weight, float(alpha))
        score = balanced_accuracy(y_val, (z_val @ coef + intercept).argmax(axis=1))
        if best is None or score > best[0]:
            best = (score, float(alpha), coef, intercept)
    score, alpha, coef, intercept = best
    return LogisticReference(mean, scale, coef, intercept, alpha, score)


def spread_subset(n: int, max_items: int | None, seed: int = 0) -> np.ndarray:
    """Indices of at most ``max_items`` of ``n`` items, drawn once with a fixed seed, in order."""
    if max_items is None or n <= max_items:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, int(max_items), replace=False))


def window_features(
    dataset, batch_size: int = 256, max_windows: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Band-power features and the first target of the windows of a ``WindowDataset`` (all of them, or a
    fixed spread-out subset of ``max_windows``)."""
    sfreq = float(Manifest.load(dataset.cache_dir).recordings["sfreq"].iloc[0])
    picked = spread_subset(len(dataset), max_windows)
    features, targets = [], []
    for first in range(0, len(picked), batch_size):
        items = dataset.__getitems__(picked[first : first + batch_size])
        x = np.stack([item["x"].numpy() for item in items])
        features.append(band_power_features(x, sfreq))
        targets.append(np.array([float(item["y"][0]) for item in items]))
    return np.concatenate(features), np.concatenate(targets)


def reference_scores(
    cache_dir: str | Path,
    mode: str,
    target: str | None = None,
    split_cfg: SplitConfig | None = None,
) -> dict[str, float]:
    """Train/val/test band-power ridge on one windows mode of a prepared cache.

    Returns ``test_nrmse`` (the reference), ``mean_nrmse`` (predicting the train mean on test), ``val_nrmse``,
    ``alpha`` and the window and subject counts of each split.
    """
    target = target or TARGETS[mode][0]
    split_cfg = split_cfg or SplitConfig()
    data = {}
    result: dict[str, float] = {}
    for split in ("train", "val", "test"):
        dataset = make_dataset(cache_dir, mode, split, split_cfg, targets=[target], train=False)
        if not len(dataset):
            raise ValueError(f"no {mode} windows with {target} in the {split} split of {cache_dir}")
        data[split] = window_features(dataset)
        result[f"n_{split}_windows"] = float(len(dataset))
        result[f"n_{split}_subjects"] = float(len(dataset.subjects))
    model = fit_ridge_reference(*data["train"], *data["val"])
    x_test, y_test = data["test"]
    result["test_nrmse"] = nrmse(y_test, model.predict(x_test))
    result["mean_nrmse"] = nrmse(y_test, np.full_like(y_test, data["train"][1].mean()))
    result["val_nrmse"] = model.val_nrmse
    result["alpha"] = model.alpha
    return result
