"""Electrode positions and smooth source topographies, so neighbouring channels correlate as in real EEG.

Every source sits at a point on the scalp (an "anchor"); its topography is a Gaussian bump of the distance
from the anchor to each electrode. Anchors are fixed "anatomy" shared by all subjects, jittered by a few
millimetres per subject, so topographies are subject-specific but similar.
"""

from __future__ import annotations

from functools import lru_cache

import mne
import numpy as np

HBN_CHANNELS = tuple([f"E{i}" for i in range(1, 129)] + ["Cz"])
N_BACKGROUND_SOURCES = 28
ANCHOR_JITTER_M = 0.006
TOPOGRAPHY_WIDTH_M = 0.035

# Named sources used by the physiology and the tasks, placed at 10-05 positions.
REGION_ANCHORS = {
    "alpha_left": "PO3",
    "alpha_right": "PO4",
    "alpha_mid": "POz",
    "theta": "Fz",
    "beta_left": "C3",
    "beta_right": "C4",
    "visual": "Oz",
    "parietal": "Pz",
    "motor_left": "C3",
    "motor_right": "C4",
    "movie_0": "O1",
    "movie_1": "O2",
    "movie_2": "T7",
    "movie_3": "T8",
    "movie_4": "P7",
    "movie_5": "P8",
    "movie_6": "Fz",
}
MOVIE_REGIONS = tuple(name for name in REGION_ANCHORS if name.startswith("movie_"))


@lru_cache(maxsize=1)
def reference_positions() -> dict[str, np.ndarray]:
    """10-05 positions in MNE head coordinates (metres)."""
    names = mne.channels.get_builtin_montages()
    montage_name = "colin27_1005" if "colin27_1005" in names else "standard_1005"
    return dict(mne.channels.make_standard_montage(montage_name).get_positions()["ch_pos"])


@lru_cache(maxsize=1)
def hbn_positions() -> np.ndarray:
    """(129, 3) positions of E1..E128, Cz from MNE's GSN-HydroCel-129 montage."""
    positions = mne.channels.make_standard_montage("GSN-HydroCel-129").get_positions()["ch_pos"]
    return np.array([positions[name] for name in HBN_CHANNELS])


@lru_cache(maxsize=1)
def background_anchors() -> np.ndarray:
    """Fixed anchors for the background sources, spread over the upper head (same for every subject)."""
    positions = reference_positions()
    names = sorted(name for name, pos in positions.items() if pos[2] > -0.01)
    picks = np.random.default_rng(20240601).choice(len(names), N_BACKGROUND_SOURCES, replace=False)
    return np.array([positions[names[i]] for i in sorted(picks)])


def source_anchors(regions: list[str]) -> np.ndarray:
    """Anchors of the background sources followed by the named ``regions``."""
    positions = reference_positions()
    named = np.array([positions[REGION_ANCHORS[region]] for region in regions]).reshape(-1, 3)
    return np.concatenate([background_anchors(), named])


def topographies(
    electrode_positions: np.ndarray, anchors: np.ndarray, jitter_seed: int, polarity_seed: int = 7
) -> np.ndarray:
    """(n_electrodes, n_sources) float32 mixing matrix of Gaussian bumps around jittered anchors.

    Polarities of the background sources are fixed (anatomy); the subject only moves anchors a little.
    """
    jitter = np.random.default_rng(jitter_seed).normal(0.0, ANCHOR_JITTER_M, anchors.shape)
    moved = anchors + jitter
    distance = np.linalg.norm(electrode_positions[:, None, :] - moved[None, :, :], axis=-1)
    mixing = np.exp(-0.5 * (distance / TOPOGRAPHY_WIDTH_M) ** 2)
    signs = np.ones(anchors.shape[0])
    signs[:N_BACKGROUND_SOURCES] = np.random.default_rng(polarity_seed).choice(
        [-1.0, 1.0], N_BACKGROUND_SOURCES
    )
    return (mixing * signs).astype(np.float32)
