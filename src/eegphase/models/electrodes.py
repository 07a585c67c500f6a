"""The table of known electrodes: one index per name, shared by every model's spatial embedding.

HydroCel GSN 129 comes first, so the HBN montage (E1..E128, Cz) maps onto indices 0..128 and the
default ``ch_idx = arange(129)`` is correct for HBN; 10-20 names not already present follow.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import cache

import numpy as np
import torch

HYDROCEL_129 = "GSN-HydroCel-129"


def _ten_twenty_montage_name() -> str:
    """MNE 1.13 renamed 'standard_1020' to 'colin27_1020'; accept both."""
    import mne

    names = mne.channels.get_builtin_montages()
    return "colin27_1020" if "colin27_1020" in names else "standard_1020"


@cache
def _montages() -> tuple:
    import mne

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)
        hydrocel = mne.channels.make_standard_montage(HYDROCEL_129)
        ten_twenty = mne.channels.make_standard_montage(_ten_twenty_montage_name())
    return hydrocel, ten_twenty


@cache
def electrode_names() -> tuple[str, ...]:
    """All known electrode names: HydroCel 129 then the extra 10-20 names (222 in all)."""
    hydrocel, ten_twenty = _montages()
    names = list(hydrocel.ch_names)
    upper = {n.upper() for n in names}
    names += [n for n in ten_twenty.ch_names if n.upper() not in upper]
    return tuple(names)


N_HYDROCEL = 129


def n_electrodes() -> int:
    return len(electrode_names())


@cache
def _index_by_upper_name() -> dict[str, int]:
    return {name.upper(): i for i, name in enumerate(electrode_names())}


def electrode_index(names: Sequence[str]) -> torch.Tensor:
    """Indices into the electrode table (case-insensitive); an unknown name is an error naming it."""
    table = _index_by_upper_name()
    unknown = [n for n in names if n.upper() not in table]
    if unknown:
        raise ValueError(
            f"unknown electrode names {unknown}; known: HydroCel-129 (E1..E128, Cz) and 10-20 names"
        )
    return torch.tensor([table[n.upper()] for n in names], dtype=torch.long)


@cache
def _all_positions() -> np.ndarray:
    hydrocel, ten_twenty = _montages()
    pos = {**ten_twenty.get_positions()["ch_pos"], **hydrocel.get_positions()["ch_pos"]}
    upper = {k.upper(): v for k, v in pos.items()}
    return np.stack([upper[n.upper()] for n in electrode_names()]).astype(np.float32)


def electrode_positions(indices: torch.Tensor | None = None) -> torch.Tensor:
    """3-D head positions (metres) of the given electrode indices (all electrodes when None)."""
    table = torch.from_numpy(_all_positions())
    return table if indices is None else table[indices.long().cpu()]
