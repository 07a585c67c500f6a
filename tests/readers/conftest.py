"""Writers for small real EEG files (EDF, BDF, EEGLAB .set + .fdt) and BIDS side files, for reader tests."""

from __future__ import annotations

import datetime
from pathlib import Path
from types import SimpleNamespace

import edfio
import mne
import numpy as np
import pandas as pd
import pytest
import scipy.io

mne.set_log_level("ERROR")

HBN_NAMES = [f"E{i}" for i in range(1, 129)] + ["Cz"]
PARTICIPANT_COLUMNS = [
    "participant_id",
    "release_number",
    "sex",
    "age",
    "ehq_total",
    "commercial_use",
    "full_pheno",
    "p_factor",
    "attention",
    "internalizing",
    "externalizing",
    "RestingState",
    "contrastChangeDetection_1",
]


def random_raw(ch_names: list[str], sfreq: float, seconds: float, seed: int = 0) -> mne.io.RawArray:
    """Gaussian noise of about 10 microvolts, in volts as MNE stores it."""
    rng = np.random.default_rng(seed)
    data = rng.normal(0.0, 10e-6, size=(len(ch_names), int(round(sfreq * seconds))))
    return mne.io.RawArray(data, mne.create_info(ch_names, sfreq, "eeg"))


def write_set_with_fdt(path: Path, raw: mne.io.BaseRaw) -> Path:
    """An EEGLAB .set whose samples live in a separate .fdt, as in the HBN releases."""
    mne.export.export_raw(path, raw, fmt="eeglab", overwrite=True)
    mat = scipy.io.loadmat(path, squeeze_me=False, struct_as_record=False, appendmat=False)
    mat = {key: value for key, value in mat.items() if not key.startswith("__")}
    fdt = path.with_suffix(".fdt")
    # EEGLAB stores float32 samples channel-fastest (MATLAB column order of nbchan x pnts)
    np.asarray(mat["data"], dtype="<f4").T.tofile(fdt)
    mat["data"] = fdt.name
    scipy.io.savemat(path, mat, appendmat=False)
    return fdt


def write_recording(path: Path, raw: mne.io.BaseRaw) -> Path:
    """Write ``raw`` in the format given by the suffix (.set gets a separate .fdt)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.suffix == ".set":
        write_set_with_fdt(path, raw)
    else:
        mne.export.export_raw(path, raw, fmt=path.suffix[1:], overwrite=True)
    return path


def write_events(path: Path, rows: list[dict]) -> Path:
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False, na_rep="n/a")
    return path


def write_tuh_edf(
    path: Path, labels: list[str], sfreq: float = 250.0, seconds: float = 4.0, **patient
) -> Path:
    """A TUH-style EDF written with edfio, with 'Age:NN' in the patient field when ``age`` is given."""
    rng = np.random.default_rng(1)
    signals = [
        edfio.EdfSignal(
            rng.normal(0, 10, int(sfreq * seconds)),
            sfreq,
            label=label,
            physical_dimension="uV",
            physical_range=(-500, 500),
        )
        for label in labels
    ]
    age = patient.pop("age", None)
    edf_patient = edfio.Patient(
        code=path.stem.split("_")[0],
        sex=patient.get("sex", "X"),
        birthdate=datetime.date(1960, 1, 1),
        additional=[f"Age:{age}"] if age is not None else [],
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    edfio.Edf(signals, patient=edf_patient).write(path)
    return path


def truncate(path: Path, keep_fraction: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep_fraction)])


@pytest.fixture
def hbn_root(tmp_path: Path) -> Path:
    """A small HBN release: 2 subjects (.set + .fdt and .bdf), one start-kit-excluded subject."""
    root = tmp_path / "R3_L100"
    root.mkdir()
    rows = [
        ["sub-NDARAA111AAA", "R3", "M", "9.5", "n/a", "Yes", "Yes", "0.3", "-0.1", "0.2", "0.5", "available",
         "available"],
        ["sub-NDARBB222BBB", "R3", "F", "n/a", "80", "Yes", "No", "n/a", "n/a", "n/a", "n/a", "available",
         "unavailable"],
        ["sub-NDARWV769JM7", "R3", "M", "12", "50", "Yes", "Yes", "1", "1", "1", "1", "available", "n/a"],
    ]  # fmt: skip
    pd.DataFrame(rows, columns=PARTICIPANT_COLUMNS).to_csv(root / "participants.tsv", sep="\t", index=False)

    eeg = root / "sub-NDARAA111AAA" / "eeg"
    write_recording(eeg / "sub-NDARAA111AAA_task-RestingState_eeg.set", random_raw(HBN_NAMES, 500.0, 4.0))
    write_events(
        eeg / "sub-NDARAA111AAA_task-RestingState_events.tsv",
        [
            {
                "onset": 2.0,
                "duration": 0.0,
                "sample": 1000,
                "value": "instructed_toCloseEyes",
                "event_code": 30,
            },
            {"onset": 0.5, "duration": 0.0, "sample": 250, "value": "resting_start", "event_code": 90},
            {
                "onset": 9.0,
                "duration": 0.0,
                "sample": 4500,
                "value": "instructed_toOpenEyes",
                "event_code": 20,
            },
        ],
    )
    write_recording(
        eeg / "sub-NDARAA111AAA_task-contrastChangeDetection_run-1_eeg.bdf", random_raw(HBN_NAMES, 100.0, 6.0)
    )
    write_events(
        eeg / "sub-NDARAA111AAA_task-contrastChangeDetection_run-1_events.tsv",
        [
            {"onset": 1.0, "duration": "n/a", "sample": 100, "value": "contrastTrial_start", "event_code": 5,
             "feedback": "n/a"},
            {"onset": 2.5, "duration": "n/a", "sample": 250, "value": "right_buttonPress", "event_code": 13,
             "feedback": "smiley_face"},
        ],
    )  # fmt: skip
    eeg = root / "sub-NDARBB222BBB" / "eeg"
    write_recording(eeg / "sub-NDARBB222BBB_task-RestingState_eeg.bdf", random_raw(HBN_NAMES, 100.0, 3.0))
    eeg = root / "sub-NDARWV769JM7" / "eeg"
    write_recording(eeg / "sub-NDARWV769JM7_task-RestingState_eeg.bdf", random_raw(HBN_NAMES, 100.0, 3.0))
    return root


@pytest.fixture
def eeg_files() -> SimpleNamespace:
    """The writers above, as a fixture so test modules need no import path to this folder."""
    return SimpleNamespace(
        HBN_NAMES=HBN_NAMES,
        random_raw=random_raw,
        write_recording=write_recording,
        write_events=write_events,
        write_tuh_edf=write_tuh_edf,
        truncate=truncate,
    )
