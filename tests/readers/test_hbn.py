"""HbnReader on a small BIDS tree of real .set/.fdt and .bdf files written in tmp_path."""

from __future__ import annotations

import shutil

import numpy as np
import pandas as pd
import pytest

from eegphase.data.readers import HbnReader, make_reader
from eegphase.data.readers.hbn import infer_release
from eegphase.data.recording import EVENT_COLUMNS, SUBJECT_COLUMNS, RecordingError, SubjectTableError


def test_discover_parses_bids_names_and_skips_excluded_subjects(hbn_root):
    refs = make_reader("hbn", hbn_root).discover()
    assert [(r.subject, r.task, r.run, r.path.suffix) for r in refs] == [
        ("NDARAA111AAA", "RestingState", None, ".set"),
        ("NDARAA111AAA", "contrastChangeDetection", 1, ".bdf"),
        ("NDARBB222BBB", "RestingState", None, ".bdf"),
    ]
    assert {r.release for r in refs} == {"R3"}
    assert refs[0].events_path.name == "sub-NDARAA111AAA_task-RestingState_events.tsv"
    assert refs[2].events_path is None


def test_excluded_subjects_can_be_kept(hbn_root):
    refs = HbnReader(hbn_root, exclude_subjects=False).discover()
    assert "NDARWV769JM7" in {r.subject for r in refs}


def test_task_filter(hbn_root):
    refs = HbnReader(hbn_root, tasks=["contrastChangeDetection"]).discover()
    assert [(r.subject, r.run) for r in refs] == [("NDARAA111AAA", 1)]


def test_load_set_with_fdt_gives_129_channels_in_volts_with_montage(hbn_root, eeg_files):
    reader = HbnReader(hbn_root)
    ref = reader.discover()[0]
    recording = reader.load(ref)
    raw = recording.raw
    assert raw.preload is False
    assert raw.ch_names == eeg_files.HBN_NAMES
    assert raw.info["sfreq"] == 500.0
    expected = eeg_files.random_raw(eeg_files.HBN_NAMES, 500.0, 4.0).get_data()
    np.testing.assert_allclose(raw.get_data(), expected, atol=1e-9)  # volts, float32 round trip
    positions = raw.get_montage().get_positions()["ch_pos"]
    assert len(positions) == 129 and not np.isnan(positions["E1"]).any()


def test_events_are_sorted_and_late_ones_dropped_with_a_note(hbn_root):
    reader = HbnReader(hbn_root)
    recording = reader.load(reader.discover()[0])
    events = recording.events
    assert list(events.columns[:3]) == list(EVENT_COLUMNS)
    assert list(events["value"]) == ["resting_start", "instructed_toCloseEyes"]  # 9.0 s is past 4 s
    assert list(events["event_code"]) == [90, 30]
    assert any("dropped 1 events after the end" in note for note in recording.notes)


def test_load_bdf_keeps_task_columns_and_reads_na(hbn_root):
    reader = HbnReader(hbn_root)
    recording = reader.load(reader.discover()[1])
    assert recording.raw.info["sfreq"] == 100.0
    assert len(recording.raw.ch_names) == 129
    events = recording.events
    assert events["duration"].isna().all()
    assert events["feedback"].isna().tolist() == [True, False]
    assert events.loc[1, "feedback"] == "smiley_face"


def test_missing_events_file_gives_empty_events_and_a_note(hbn_root):
    reader = HbnReader(hbn_root)
    recording = reader.load(reader.discover()[2])
    assert recording.events.empty and list(recording.events.columns) == list(EVENT_COLUMNS)
    assert any("no events.tsv" in note for note in recording.notes)


def test_six_channel_recording_is_refused_naming_file_and_count(hbn_root, eeg_files):
    path = hbn_root / "sub-NDARBB222BBB" / "eeg" / "sub-NDARBB222BBB_task-DespicableMe_eeg.bdf"
    eeg_files.write_recording(path, eeg_files.random_raw(["E1", "E2", "E3", "E4", "E5", "Cz"], 100.0, 2.0))
    reader = HbnReader(hbn_root)
    ref = next(r for r in reader.discover() if r.task == "DespicableMe")
    with pytest.raises(RecordingError, match="has 6 EEG channels, expected 129") as error:
        reader.load(ref)
    assert error.value.path == path
    # the caller can go on with the other recordings
    others = [r for r in reader.discover() if r != ref]
    assert [len(reader.load(r).raw.ch_names) for r in others] == [129, 129, 129]


def test_set_without_fdt_names_the_missing_fdt(hbn_root):
    reader = HbnReader(hbn_root)
    ref = reader.discover()[0]
    ref.path.with_suffix(".fdt").unlink()
    with pytest.raises(RecordingError, match=r"sub-NDARAA111AAA_task-RestingState_eeg\.fdt is missing"):
        reader.load(ref)


def test_truncated_fdt_and_truncated_bdf_are_refused(hbn_root, eeg_files):
    reader = HbnReader(hbn_root)
    set_ref, bdf_ref, _ = reader.discover()
    eeg_files.truncate(set_ref.path.with_suffix(".fdt"))
    with pytest.raises(RecordingError, match="truncated data file") as error:
        reader.load(set_ref)
    assert error.value.path == set_ref.path
    eeg_files.truncate(bdf_ref.path)
    with pytest.raises(RecordingError, match="truncated: header promises") as error:
        reader.load(bdf_ref)
    assert error.value.path == bdf_ref.path


def test_garbage_set_file_is_a_recording_error(hbn_root):
    reader = HbnReader(hbn_root)
    ref = reader.discover()[0]
    ref.path.write_bytes(b"not a matlab file at all" * 10)
    with pytest.raises(RecordingError, match=str(ref.path.name)):
        reader.load(ref)


def test_read_subjects_shapes_participants_tsv(hbn_root):
    table = HbnReader(hbn_root).read_subjects()
    assert list(table.columns[: len(SUBJECT_COLUMNS)]) == list(SUBJECT_COLUMNS)
    assert table["subject"].tolist() == ["NDARAA111AAA", "NDARBB222BBB"]  # excluded subject gone
    assert table["sex"].tolist() == ["M", "F"]
    assert table.loc[0, "age"] == 9.5 and np.isnan(table.loc[1, "age"])
    assert np.isnan(table.loc[1, "externalizing"]) and table.loc[0, "externalizing"] == 0.5
    assert table["release"].tolist() == ["R3", "R3"]
    assert table.loc[1, "contrastChangeDetection_1"] == "unavailable"  # task columns kept
    assert table["ehq_total"].dtype == float and table.loc[1, "ehq_total"] == 80.0
    assert table["commercial_use"].tolist() == ["Yes", "Yes"]
    assert any("excluded 1 subjects" in note for note in table.attrs["notes"])


def test_participants_without_id_column_names_file_and_column(hbn_root):
    table = pd.read_csv(hbn_root / "participants.tsv", sep="\t").drop(columns=["participant_id"])
    table.to_csv(hbn_root / "participants.tsv", sep="\t", index=False)
    with pytest.raises(SubjectTableError, match=r"participants\.tsv.*'participant_id'"):
        HbnReader(hbn_root).read_subjects()


def test_participants_with_text_in_a_numeric_column_names_the_column(hbn_root):
    path = hbn_root / "participants.tsv"
    path.write_text(path.read_text().replace("\t9.5\t", "\tnine\t"))
    with pytest.raises(SubjectTableError, match=r"participants\.tsv: column 'age'.*'nine'"):
        HbnReader(hbn_root).read_subjects()


def test_missing_optional_columns_and_release_come_from_elsewhere(hbn_root):
    path = hbn_root / "participants.tsv"
    table = pd.read_csv(path, sep="\t").drop(columns=["p_factor", "release_number"])
    table.to_csv(path, sep="\t", index=False)
    subjects = HbnReader(hbn_root).read_subjects()
    assert subjects["p_factor"].isna().all()
    assert subjects["release"].tolist() == ["R3", "R3"]  # from the folder name R3_L100
    assert any("p_factor" in note for note in subjects.attrs["notes"])
    assert {r.release for r in HbnReader(hbn_root).discover()} == {"R3"}


def test_release_inferred_from_openneuro_accession(tmp_path):
    root = tmp_path / "data"
    root.mkdir()
    (root / "dataset_description.json").write_text(
        '{"Name": "HBN EEG", "DatasetDOI": "doi:10.18112/openneuro.ds005511.v1"}'
    )
    assert infer_release(root) == "R7"
    assert infer_release(tmp_path / "R11_mini") == "R11"


def test_without_participants_tsv_subjects_come_from_disk(hbn_root):
    (hbn_root / "participants.tsv").unlink()
    table = HbnReader(hbn_root).read_subjects()
    assert table["subject"].tolist() == ["NDARAA111AAA", "NDARBB222BBB"]
    assert table["age"].isna().all()
    assert table["release"].tolist() == ["R3", "R3"]


def test_same_recording_in_two_formats_is_listed_once(hbn_root):
    bdf = hbn_root / "sub-NDARBB222BBB" / "eeg" / "sub-NDARBB222BBB_task-RestingState_eeg.bdf"
    shutil.copy(bdf, bdf.with_suffix(".edf"))  # not an HBN extension: ignored
    refs = HbnReader(hbn_root, extensions=(".bdf", ".set")).discover()
    assert sum(r.subject == "NDARBB222BBB" for r in refs) == 1


def test_discover_reads_session_and_run_entities_and_skips_non_bids_names(hbn_root, eeg_files):
    eeg = hbn_root / "sub-NDARBB222BBB" / "ses-01" / "eeg"
    raw = eeg_files.random_raw(eeg_files.HBN_NAMES, 100.0, 2.0)
    eeg_files.write_recording(eeg / "sub-NDARBB222BBB_ses-01_task-surroundSupp_run-2_eeg.bdf", raw)
    eeg_files.write_recording(eeg / "notes_eeg.bdf", raw)  # not sub-*_task-*: not a recording
    eeg_files.write_recording(eeg / "sub-NDARBB222BBB_ses-01_eeg.bdf", raw)  # no task entity: skipped
    refs = HbnReader(hbn_root).discover()
    assert [(r.subject, r.session, r.task, r.run) for r in refs if r.session] == [
        ("NDARBB222BBB", "01", "surroundSupp", 2)
    ]
    assert len(refs) == 4
