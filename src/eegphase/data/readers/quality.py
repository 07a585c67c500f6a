"""Signal checks that need the data, so they run after ``get_data()`` (readers load lazily).

Policy: a channel with any NaN/inf sample, or one that never moves (peak-to-peak below
``flat_threshold`` volts), is bad. The caller interpolates or zeroes bad channels and notes it. When
more than ``max_bad_fraction`` of the channels are bad (always when all are) the recording is unusable
and ``RecordingError`` is raised, because interpolating from a few channels invents the signal.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from eegphase.data.recording import RecordingError

FLAT_THRESHOLD_V = 1e-12  # far below any real EEG (microvolts) yet above float32 rounding of zeros


def find_bad_channels(
    data: np.ndarray, flat_threshold: float = FLAT_THRESHOLD_V
) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (non_finite, flat) over the channels of ``data`` (n_channels, n_times)."""
    # min and max propagate NaN and inf, so two reductions find both faults (no boolean temporaries)
    with np.errstate(invalid="ignore"):
        low, high = data.min(axis=1), data.max(axis=1)
        non_finite = ~(np.isfinite(low) & np.isfinite(high))
        flat = ~non_finite & ((high - low) < flat_threshold)
    return non_finite, flat


def check_signal_quality(
    data: np.ndarray,
    ch_names: Sequence[str],
    path: Path | str,
    flat_threshold: float = FLAT_THRESHOLD_V,
    max_bad_fraction: float = 0.5,
) -> list[str]:
    """Names of NaN/inf or flat channels; ``RecordingError`` naming the file when too many are bad."""
    data = np.asarray(data)
    if data.ndim != 2 or data.shape[0] != len(ch_names):
        raise ValueError(f"{path}: data shape {data.shape} does not match {len(ch_names)} channel names")
    if data.shape[1] == 0:
        raise RecordingError(path, "holds no samples")
    non_finite, flat = find_bad_channels(data, flat_threshold)
    bad = non_finite | flat
    n_bad = int(bad.sum())
    if n_bad == len(ch_names) or n_bad > max_bad_fraction * len(ch_names):
        raise RecordingError(
            path,
            f"{n_bad} of {len(ch_names)} channels are unusable "
            f"({int(non_finite.sum())} with NaN/inf samples, {int(flat.sum())} flat)",
        )
    return [name for name, is_bad in zip(ch_names, bad, strict=True) if is_bad]
