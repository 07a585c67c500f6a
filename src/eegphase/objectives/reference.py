"""A simple reference score: ridge regression on log band power, trained on train, tuned on val, scored on test.

It tells whether a dataset's targets are decodable at all and what a model should beat: per channel, the log
power in five bands (delta, theta, alpha, beta, gamma) of each window, standardised, then closed-form ridge with
the penalty chosen on the validation split. Numpy only; reads the same windows as training does.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from eegphase.data.datasets import TARGETS, make_dataset
from eegphase.data.manifest import Manifest
from eegphase.data.splits import SplitConfig
from eegphase.objectives.metrics import nrmse

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


def window_features(dataset, batch_size: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Band-power features and the first target of every window of a ``WindowDataset``."""
    sfreq = float(Manifest.load(dataset.cache_dir).recordings["sfreq"].iloc[0])
    features, targets = [], []
    for first in range(0, len(dataset), batch_size):
        items = dataset.__getitems__(range(first, min(first + batch_size, len(dataset))))
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
