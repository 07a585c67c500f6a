"""FolderReader on the real fixtures (PhysioNet EDF+, EEGLAB's own .set) and on small written folders."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eegphase.data.readers import FolderReader, make_reader
from eegphase.data.recording import SUBJECT_COLUMNS, RecordingError, SubjectTableError


def test_physionet_edf_names_are_normalised_and_annotations_become_events(real_fixtures):
    reader = make_reader("folder", real_fixtures / "eegmmidb", subject_pattern=r"(?P<subject>S\d{3})R\d+")
    refs = reader.discover()
    assert [(r.subject, r.path.name) for r in refs] == [("S001", "S001R03.edf"), ("S001", "S001R04.edf")]
    for ref in refs:
        recording = reader.load(ref)
        raw = recording.raw
        assert len(raw.ch_names) == 64 and raw.info["sfreq"] == 160.0
        assert raw.ch_names[:3] == ["FC5", "FC3", "FC1"]
        assert {"Fp1", "AFz", "T9", "T10", "Iz", "Cz"} <= set(raw.ch_names)
        assert raw.get_montage() is not None
        events = recording.events
        assert len(events) == 30 and set(events["value"]) == {"T0", "T1", "T2"}
        assert events["onset"].is_monotonic_increasing and events["onset"].iloc[0] == 0.0


def test_eeglab_set_written_by_eeglab_reads_32_channels(real_fixtures):
    with pytest.raises(RecordingError, match=r"none of its 32 channels is usable.*'EEG 000': no 10-05"):
        reader = make_reader("folder", real_fixtures / "eeglab")  # default 'common': scalp positions only
        reader.load(reader.discover()[0])
    reader = make_reader("folder", real_fixtures / "eeglab", channels="all")  # names without positions
    (ref,) = reader.discover()
    recording = reader.load(ref)
    assert ref.subject == "test_raw"
    assert len(recording.raw.ch_names) == 32
    data = recording.raw.get_data()
    assert data.shape == (32, recording.raw.n_times) and np.isfinite(data).all()
    assert 1e-7 < np.abs(data).mean() < 1e-3  # volts, not microvolts
    assert any("no montage set" in note for note in recording.notes)


def test_eeglab_set_without_its_fdt_names_the_fdt(real_fixtures, tmp_path):
    (tmp_path / "sub-01_eeg.set").write_bytes((real_fixtures / "eeglab" / "test_raw.set").read_bytes())
    reader = make_reader("folder", tmp_path)
    with pytest.raises(RecordingError, match=r"test_raw\.fdt is missing"):
        reader.load(reader.discover()[0])


@pytest.fixture
def user_folder(tmp_path, eeg_files):
    """Recordings named <group>/<subject>_<condition>.edf, a BIDS-named BDF, and a subjects CSV."""
    names = ["Fp1.", "fz", "CZ", "Pz-REF", "ECG"]
    eeg_files.write_recording(tmp_path / "patients" / "P01_rest.edf", eeg_files.random_raw(names, 128.0, 3.0))
    eeg_files.write_recording(tmp_path / "controls" / "C02_task.edf", eeg_files.random_raw(names, 128.0, 3.0))
    eeg_files.write_recording(tmp_path / "controls" / "notes.edf", eeg_files.random_raw(names, 128.0, 1.0))
    pd.DataFrame(
        {"subject": ["P01", "C02", "X99"], "age": ["30", "n/a", "41"], "sex": ["female", "M", "n/a"],
         "score": ["1.5", "2.5", "n/a"], "group": ["patient", "control", "control"]}
    ).to_csv(tmp_path / "subjects.csv", index=False)  # fmt: skip
    return tmp_path


def test_patterns_give_subject_label_and_task_and_skip_unmatched_files(user_folder):
    reader = FolderReader(
        user_folder,
        subjects_file="subjects.csv",
        subject_pattern=r"(?P<subject>[PC]\d\d)_",
        label_pattern=r"^(?P<label>patients|controls)/",
        task_pattern=r"_(?P<task>\w+)\.edf$",
    )
    refs = reader.discover()
    assert [(r.subject, r.label, r.task) for r in refs] == [
        ("C02", "controls", "task"),
        ("P01", "patients", "rest"),
    ]
    assert [path.name for path, _ in reader.skipped] == ["notes.edf"]
    assert "does not match 'controls/notes.edf'" in reader.skipped[0][1]
    with pytest.raises(RecordingError, match="notes.edf"):
        FolderReader(user_folder, subject_pattern=r"(?P<subject>[PC]\d\d)_", on_unmatched="error").discover()


def test_load_normalises_names_and_drops_non_eeg(user_folder):
    reader = FolderReader(user_folder, subject_pattern=r"(?P<subject>[PC]\d\d)_")
    recording = reader.load(reader.discover()[0])
    assert recording.raw.ch_names == ["Fp1", "Fz", "Cz", "Pz"]
    assert any("ECG" in note for note in recording.notes)
    assert recording.raw.get_montage() is not None
    assert recording.events.empty


def test_subject_table_keeps_extra_targets_and_fills_standard_columns(user_folder):
    table = FolderReader(user_folder, subjects_file=user_folder / "subjects.csv").read_subjects()
    assert list(table.columns) == [*SUBJECT_COLUMNS, "score", "group"]
    assert table["sex"].tolist()[:2] == ["F", "M"] and pd.isna(table.loc[2, "sex"])
    assert table["score"].dtype == float and table.loc[1, "score"] == 2.5 and np.isnan(table.loc[2, "score"])
    assert table["group"].tolist() == ["patient", "control", "control"]
    assert table["p_factor"].isna().all() and table.loc[0, "age"] == 30.0


def test_subject_table_with_other_id_column_and_bad_values(user_folder):
    path = user_folder / "subjects.csv"
    table = pd.read_csv(path, dtype=str, keep_default_na=False).rename(columns={"subject": "participant"})
    table.to_csv(path, index=False)
    with pytest.raises(SubjectTableError, match=r"subjects\.csv: required id column 'subject'"):
        FolderReader(user_folder, subjects_file=path).read_subjects()
    assert (
        FolderReader(user_folder, subjects_file=path, id_column="participant").read_subjects()["subject"][0]
        == "P01"
    )
    table["sex"] = ["female", "2", "M"]
    table.to_csv(path, index=False)
    with pytest.raises(SubjectTableError, match=r"column 'sex' holds '2'"):
        FolderReader(user_folder, subjects_file=path, id_column="participant").read_subjects()


def test_bids_folder_uses_sub_entity_and_events_tsv(tmp_path, eeg_files):
    eeg = tmp_path / "sub-07" / "eeg"
    eeg_files.write_recording(
        eeg / "sub-07_task-rest_run-2_eeg.bdf", eeg_files.random_raw(["O1", "O2"], 100.0, 2.0)
    )
    eeg_files.write_events(
        eeg / "sub-07_task-rest_run-2_events.tsv", [{"onset": 1.5, "duration": 0, "trial_type": "x"}]
    )
    reader = make_reader("folder", tmp_path)
    (ref,) = reader.discover()
    assert (ref.subject, ref.task, ref.run) == ("07", "rest", 2)
    assert reader.load(ref).events["value"].tolist() == ["x"]
    assert reader.read_subjects()["subject"].tolist() == ["07"]


def test_empty_folder_and_bad_options_are_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="no recordings"):
        FolderReader(tmp_path).discover()
    with pytest.raises(ValueError, match="named group"):
        FolderReader(tmp_path, subject_pattern=r"S\d+")
    with pytest.raises(ValueError, match="unknown reader kind 'csv'"):
        make_reader("csv", tmp_path)
