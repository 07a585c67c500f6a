"""Signal checks that need the data, so they run after ``get_data()`` (readers load lazily).

Policy: a channel with any NaN/inf sample, or one that never moves (peak-to-peak below
``flat_threshold`` volts), is bad: preprocessing zeroes it and notes it. A channel the dataset marks bad
(BIDS channels.tsv status=bad, in ``raw.info['bads']``) holds a recorded but untrusted signal: preprocessing
replaces it by a spherical-spline interpolation from the good channels (``interpolation_matrix``), as an
EEG researcher would before re-referencing, and zeroes it only when electrode positions are unknown. When
more than ``max_bad_fraction`` of the channels are bad (always when all are) the recording is unusable
and ``RecordingError`` is raised, because interpolating from a few channels invents the signal.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import mne
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


def interpolation_matrix(info: mne.Info, targets: Sequence[str], sources: Sequence[str]) -> np.ndarray | None:
    """(len(targets), len(sources)) weights that estimate each target channel from the source channels by
    MNE's spherical-spline interpolation (``interpolate_bads``, origin fitted to the montage); None when a
    channel involved has no electrode position.

    MNE interpolates a Raw in place; interpolation is linear, so running it on an identity over the sources
    reads its weights out, and the caller applies them to float32 data of any length without a float64 copy.
    """
    names = [*sources, *targets]
    sub = mne.pick_info(info, [info.ch_names.index(name) for name in names])
    positions = np.array([channel["loc"][:3] for channel in sub["chs"]])
    if not np.isfinite(positions).all() or (np.abs(positions).sum(axis=1) == 0).any():
        return None
    sub["bads"] = list(targets)
    probe = np.zeros((len(names), len(sources)))
    probe[: len(sources)] = np.eye(len(sources))
    raw = mne.io.RawArray(probe, sub, verbose="error")
    raw.interpolate_bads(reset_bads=True, verbose="error")
    return raw.get_data()[len(sources) :]
