"""Placing recordings from other montages onto the HBN layout (GSN HydroCel 129).

Used by the mixed HBN+TUH mode: each 10-20 channel goes to the nearest HydroCel electrode (positions from MNE's
standard montages, projected on the unit sphere), one channel per electrode; the rest stay zero and a channel
mask says which are real.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import cache

import mne
import numpy as np
from scipy.optimize import linear_sum_assignment

HYDROCEL = "GSN-HydroCel-129"


@cache
def _montage(name: str) -> dict[str, np.ndarray]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        positions = mne.channels.make_standard_montage(name).get_positions()["ch_pos"]
    names = list(positions)
    xyz = np.array([positions[n] for n in names], dtype=float)
    centre = _sphere_centre(xyz)
    unit = (xyz - centre) / np.linalg.norm(xyz - centre, axis=1, keepdims=True)
    return {n.upper(): u for n, u in zip(names, unit, strict=False)}


def _sphere_centre(xyz: np.ndarray) -> np.ndarray:
    """Least-squares sphere fit: montages differ in origin, so compare directions from each head's centre."""
    a = np.column_stack([2 * xyz, np.ones(len(xyz))])
    b = (xyz**2).sum(axis=1)
    solution, *_ = np.linalg.lstsq(a, b, rcond=None)
    return solution[:3]


def _ten_twenty_name() -> str:
    names = mne.channels.get_builtin_montages()
    return "colin27_1020" if "colin27_1020" in names else "standard_1020"


@cache
def hydrocel_names() -> tuple[str, ...]:
    """E1..E128, Cz: the layout every HBN recording has and every mixed window is placed on."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return tuple(mne.channels.make_standard_montage(HYDROCEL).ch_names)


def layout_indices(ch_names: Sequence[str]) -> np.ndarray:
    """Index of each channel in the HydroCel layout; -1 for channels with no known position.

    Channels named like HydroCel electrodes map by name; others (10-20 names) map to the nearest free HydroCel
    electrode by an optimal one-to-one assignment on the unit sphere.
    """
    target = hydrocel_names()
    by_name = {n.upper(): i for i, n in enumerate(target)}
    out = np.full(len(ch_names), -1, dtype=np.int64)
    pending = []
    for i, name in enumerate(ch_names):
        if name.upper() in by_name:
            out[i] = by_name[name.upper()]
        else:
            pending.append(i)
    if not pending:
        return out
    known = _montage(_ten_twenty_name())
    hydro = _montage(HYDROCEL)
    free = [j for j in range(len(target)) if j not in set(out[out >= 0].tolist())]
    rows = [i for i in pending if ch_names[i].upper() in known]
    if not rows:
        return out
    src = np.stack([known[ch_names[i].upper()] for i in rows])
    dst = np.stack([hydro[target[j].upper()] for j in free])
    cost = np.linalg.norm(src[:, None, :] - dst[None, :, :], axis=-1)
    r, c = linear_sum_assignment(cost)
    for a, b in zip(r, c, strict=False):
        out[rows[a]] = free[b]
    return out
