"""Low-level writers for the file formats real EEG comes in: EEGLAB .set + .fdt, BDF and EDF.

Every writer is byte-for-byte deterministic (fixed dates, no creation timestamps) so the same seed gives
the same files.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Sequence
from pathlib import Path

import edfio
import numpy as np
import scipy.io
from eeglabio.utils import cart_to_eeglab

_MAT_HEADER = b"MATLAB 5.0 MAT-file, written by eegphase synthetic generator"
FIXED_DATE = dt.date(2018, 1, 1)
FIXED_TIME = dt.time(10, 0, 0)


def _ras_to_als(positions: np.ndarray) -> np.ndarray:
    """MNE head coordinates (x right, y anterior) to EEGLAB's (x anterior, y left)."""
    return np.stack([positions[:, 1], -positions[:, 0], positions[:, 2]], axis=1)


def write_eeglab(
    set_path: Path,
    data_uv: np.ndarray,
    sfreq: float,
    ch_names: Sequence[str],
    positions: np.ndarray,
    events: Sequence[tuple[str, float]],
    reference: str = "Cz",
) -> None:
    """A .set header plus a separate .fdt (float32 microvolts, sample-major) as the real HBN files have."""
    fdt_path = set_path.with_suffix(".fdt")
    np.ascontiguousarray(data_uv.T, dtype="<f4").tofile(fdt_path)
    coords = cart_to_eeglab(_ras_to_als(positions.astype(float)))
    chanlocs = np.rec.fromarrays(
        [list(ch_names), *coords.T, ["EEG"] * len(ch_names)],
        names=[
            "labels",
            "X",
            "Y",
            "Z",
            "sph_theta",
            "sph_phi",
            "sph_radius",
            "theta",
            "radius",
            "sph_theta_besa",
            "sph_phi_besa",
            "type",
        ],
    )
    n_channels, n_samples = data_uv.shape
    header = {
        "setname": set_path.stem,
        "filename": set_path.name,
        "filepath": "",
        "nbchan": float(n_channels),
        "pnts": float(n_samples),
        "trials": 1.0,
        "srate": float(sfreq),
        "xmin": 0.0,
        "xmax": float((n_samples - 1) / sfreq),
        "ref": reference,
        "data": fdt_path.name,
        "datfile": fdt_path.name,
        "chanlocs": chanlocs,
        "icawinv": [],
        "icasphere": [],
        "icaweights": [],
    }
    if events:
        header["event"] = np.rec.fromarrays(
            [
                np.array([value for value, _ in events], dtype=object),
                np.array([onset * sfreq + 1 for _, onset in events]),
                np.zeros(len(events)),
            ],
            names=["type", "latency", "duration"],
        )
    buffer = io.BytesIO()
    scipy.io.savemat(buffer, header, appendmat=False, oned_as="row")
    content = bytearray(buffer.getvalue())
    content[:116] = _MAT_HEADER.ljust(116, b" ")  # replace the creation timestamp
    set_path.write_bytes(bytes(content))


def _physical_range(row: np.ndarray) -> tuple[float, float]:
    bound = float(np.abs(row).max()) * 1.01 + 1.0
    return (-bound, bound)


def write_bdf(path: Path, data_uv: np.ndarray, sfreq: float, ch_names: Sequence[str]) -> None:
    """24-bit BDF in microvolts, like the challenge's 100 Hz copies."""
    signals = [
        edfio.BdfSignal(
            row.astype(np.float64),
            sfreq,
            label=name,
            transducer_type="AgAgCl electrode",
            physical_dimension="uV",
            physical_range=_physical_range(row),
        )
        for name, row in zip(ch_names, data_uv, strict=True)
    ]
    bdf = edfio.Bdf(signals, recording=edfio.Recording(startdate=FIXED_DATE), starttime=FIXED_TIME)
    bdf.write(path)


def write_edf(
    path: Path,
    data_uv: np.ndarray,
    sfreq: float,
    labels: Sequence[str],
    patient: edfio.Patient,
    recording: edfio.Recording,
) -> None:
    """16-bit EDF in microvolts with the given patient/recording header fields."""
    signals = [
        edfio.EdfSignal(
            row.astype(np.float64),
            sfreq,
            label=label,
            transducer_type="",
            physical_dimension="uV",
            physical_range=_physical_range(row),
        )
        for label, row in zip(labels, data_uv, strict=True)
    ]
    edfio.Edf(signals, patient=patient, recording=recording, starttime=FIXED_TIME).write(path)
