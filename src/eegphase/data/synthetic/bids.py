"""BIDS text files of an HBN-EEG release: participants table, sidecars, events and dataset-level files."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import pandas as pd

from .draft import TaskDraft
from .traits import FACTOR_NAMES, SubjectTraits

TASK_COLUMNS = (
    "RestingState",
    "DespicableMe",
    "FunwithFractals",
    "ThePresent",
    "DiaryOfAWimpyKid",
    "contrastChangeDetection_1",
    "contrastChangeDetection_2",
    "contrastChangeDetection_3",
    "surroundSupp_1",
    "surroundSupp_2",
    "seqLearning6target",
    "seqLearning8target",
    "symbolSearch",
)
PARTICIPANT_COLUMNS = (
    "participant_id",
    "release_number",
    "sex",
    "age",
    "ehq_total",
    "commercial_use",
    "full_pheno",
    *FACTOR_NAMES,
    *TASK_COLUMNS,
)
EVENT_COLUMNS = ("onset", "duration", "sample", "value", "event_code")


def task_column(task: str, run: int | None) -> str:
    """The participants.tsv column of a recording (runs get a suffix: ``contrastChangeDetection_2``)."""
    return task if run is None else f"{task}_{run}"


def recording_stem(subject: str, task: str, run: int | None) -> str:
    run_part = f"_run-{run}" if run is not None else ""
    return f"sub-{subject}_task-{task}{run_part}"


def _write_json(path: Path, content: dict) -> None:
    path.write_text(json.dumps(content, indent=2) + "\n")


def _na(value: float) -> object:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else value


def write_participants(root: Path, subjects: Iterable[SubjectTraits], available: dict[str, set[str]]) -> None:
    """participants.tsv, real columns in the real order; ``available`` maps subject to task columns."""
    rows = []
    for traits in subjects:
        row = {
            "participant_id": f"sub-{traits.subject}",
            "release_number": traits.release,
            "sex": traits.sex,
            "age": traits.age,
            "ehq_total": _na(traits.ehq_total),
            "commercial_use": traits.commercial_use,
            "full_pheno": traits.full_pheno,
            **{name: _na(traits.factors[name]) for name in FACTOR_NAMES},
        }
        for column in TASK_COLUMNS:
            row[column] = "available" if column in available[traits.subject] else "unavailable"
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(PARTICIPANT_COLUMNS))
    table.to_csv(root / "participants.tsv", sep="\t", index=False, na_rep="n/a")
    _write_json(
        root / "participants.json",
        {
            "participant_id": {"Description": "Subject identifier (NDAR GUID style)"},
            "release_number": {"Description": "HBN-EEG release the subject belongs to"},
            "sex": {"Description": "Sex", "Levels": {"M": "male", "F": "female"}},
            "age": {"Description": "Age at the EEG session", "Units": "years"},
            "ehq_total": {"Description": "Edinburgh Handedness Inventory laterality score (-100..100)"},
            "commercial_use": {"Description": "Whether the data may be used commercially"},
            "full_pheno": {"Description": "Whether the full phenotype is available"},
            **{
                name: {"Description": f"Bifactor-model {name} score (standardized), from the CBCL"}
                for name in FACTOR_NAMES
            },
            **{column: {"Description": "Whether this recording is available"} for column in TASK_COLUMNS},
        },
    )


def write_events(path: Path, draft: TaskDraft) -> pd.DataFrame:
    """_events.tsv: onset, duration, sample, value, event_code, then the task's extra columns."""
    table = pd.DataFrame(draft.events)
    table = table.sort_values("onset", kind="stable").reset_index(drop=True)
    table["onset"] = table["onset"].round(4)
    table["duration"] = 0.0
    table["sample"] = (table["onset"] * draft.sfreq).round().astype(int)
    columns = [*EVENT_COLUMNS, *draft.extra_columns]
    table = table.reindex(columns=columns)
    table.to_csv(path, sep="\t", index=False, na_rep="n/a")
    return table


def write_channels(path: Path, ch_names: Sequence[str]) -> None:
    table = pd.DataFrame({"name": list(ch_names), "type": "EEG", "units": "uV"})
    table.to_csv(path, sep="\t", index=False)


def write_eeg_sidecar(path: Path, draft: TaskDraft, n_channels: int, band: tuple[float, float]) -> None:
    _write_json(
        path,
        {
            "TaskName": draft.task,
            "SamplingFrequency": draft.sfreq,
            "EEGReference": "Cz",
            "PowerLineFrequency": 60,
            "EEGChannelCount": n_channels,
            "EOGChannelCount": 0,
            "ECGChannelCount": 0,
            "EMGChannelCount": 0,
            "RecordingDuration": draft.duration,
            "RecordingType": "continuous",
            "EEGPlacementScheme": "EGI HydroCel GSN 129",
            "CapManufacturer": "Electrical Geodesics",
            "Manufacturer": "Electrical Geodesics",
            "SoftwareFilters": {"SyntheticBand": {"LowCutoff": band[0], "HighCutoff": band[1]}},
        },
    )


def write_dataset_files(root: Path, releases: Sequence[str], tasks: Sequence[str], description: str) -> None:
    """dataset_description.json, README, CHANGES and task-level sidecars."""
    _write_json(
        root / "dataset_description.json",
        {
            "Name": f"Synthetic HBN-EEG ({', '.join(releases)})",
            "BIDSVersion": "1.9.0",
            "DatasetType": "raw",
            "License": "CC0",
            "Authors": ["eegphase synthetic generator"],
            "GeneratedBy": [{"Name": "eegphase.synth", "Description": description}],
        },
    )
    (root / "README").write_text(
        "Synthetic data shaped like the Healthy Brain Network EEG releases (BIDS).\n"
        "No real person is described here. " + description + "\n"
    )
    (root / "CHANGES").write_text("1.0.0\n  - Generated by eegphase.synth.\n")
    for task in tasks:
        _write_json(root / f"task-{task}_eeg.json", {"TaskName": task, "EEGReference": "Cz"})
