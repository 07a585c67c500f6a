"""TuhReader on TUH-style EDF files written with edfio (labels, patient field and layout as in TUH)."""

from __future__ import annotations

import numpy as np
import pytest

from eegphase.data.readers import make_reader
from eegphase.data.readers.tuh import parse_tuh_name, traits_from_patient_field
from eegphase.data.recording import RecordingError

TUH_LABELS = ["EEG FP1-REF", "EEG FP2-REF", "EEG T3-REF", "EEG T4-REF", "EEG T5-REF", "EEG T6-REF",
              "EEG CZ-REF", "EEG O1-REF", "EEG EKG1-REF", "PHOTIC-REF", "IBI", "BURSTS"]  # fmt: skip


@pytest.fixture
def tuh_root(tmp_path, eeg_files):
    root = tmp_path / "tuh"
    eeg_files.write_tuh_edf(root / "000" / "aaaaaaaa" / "aaaaaaaa_s001_t000.edf", TUH_LABELS, age=45, sex="F")
    eeg_files.write_tuh_edf(root / "000" / "aaaaaaaa" / "aaaaaaaa_s002_t001.edf", TUH_LABELS, age=46, sex="F")
    labels_le = [label.replace("-REF", "-LE") for label in TUH_LABELS]
    eeg_files.write_tuh_edf(
        root / "001" / "bbbbbbbb" / "bbbbbbbb_s001_t000.edf", labels_le, sfreq=256.0, sex="M"
    )
    return root


def test_discover_takes_subject_and_session_from_file_names(tuh_root):
    refs = make_reader("tuh", tuh_root).discover()
    assert [(r.subject, r.session, r.run) for r in refs] == [
        ("aaaaaaaa", "s001", 0),
        ("aaaaaaaa", "s002", 1),
        ("bbbbbbbb", "s001", 0),
    ]
    assert all(r.dataset == "tuh" and r.task == "" for r in refs)


def test_load_normalises_names_drops_non_eeg_and_notes_reference(tuh_root):
    reader = make_reader("tuh", tuh_root)
    recording = reader.load(reader.discover()[0])
    raw = recording.raw
    assert raw.ch_names == ["Fp1", "Fp2", "T7", "T8", "P7", "P8", "Cz", "O1"]
    assert raw.info["sfreq"] == 250.0
    assert "reference: REF" in recording.notes
    assert any("EEG EKG1-REF" in note and "PHOTIC-REF" in note for note in recording.notes)
    assert not np.isnan(raw.get_montage().get_positions()["ch_pos"]["T7"]).any()
    data = raw.get_data()
    assert 5e-6 < data.std() < 20e-6  # written as ~10 uV: read back in volts


def test_linked_ear_reference_and_other_sampling_rate(tuh_root):
    reader = make_reader("tuh", tuh_root)
    recording = reader.load(reader.discover()[2])
    assert "reference: LE" in recording.notes
    assert recording.raw.info["sfreq"] == 256.0
    assert recording.raw.ch_names[2] == "T7"


def test_read_subjects_from_headers(tuh_root):
    table = make_reader("tuh", tuh_root).read_subjects()
    assert table["subject"].tolist() == ["aaaaaaaa", "bbbbbbbb"]
    assert table.loc[0, "age"] == 45.0 and table.loc[0, "sex"] == "F"  # first session's header
    assert np.isnan(table.loc[1, "age"]) and table.loc[1, "sex"] == "M"
    assert table["p_factor"].isna().all()


def test_truncated_edf_is_refused_naming_the_file(tuh_root, eeg_files):
    reader = make_reader("tuh", tuh_root)
    first, second, _ = reader.discover()
    eeg_files.truncate(first.path, 0.6)
    with pytest.raises(RecordingError, match="aaaaaaaa_s001_t000.edf: truncated") as error:
        reader.load(first)
    assert error.value.path == first.path
    assert len(reader.load(second).raw.ch_names) == 8  # the next file still loads


def test_edf_cut_inside_its_header_is_refused(tuh_root, eeg_files):
    reader = make_reader("tuh", tuh_root)
    ref = reader.discover()[0]
    ref.path.write_bytes(ref.path.read_bytes()[:100])
    with pytest.raises(RecordingError, match="shorter than the 256-byte EDF header"):
        reader.load(ref)


@pytest.mark.parametrize(
    ("field", "age", "sex"),
    [
        ("aaaaaaaa M 01-JAN-1960 aaaaaaaa Age:45", 45.0, "M"),
        ("X F X X Age: 7", 7.0, "F"),
        ("X X X X", np.nan, np.nan),
        ("", np.nan, np.nan),
    ],
)
def test_traits_from_patient_field(field, age, sex):
    parsed_age, parsed_sex = traits_from_patient_field(field)
    assert parsed_age == age or (np.isnan(age) and np.isnan(parsed_age))
    assert parsed_sex == sex or (not isinstance(sex, str) and not isinstance(parsed_sex, str))


def test_parse_tuh_name_falls_back_to_stem(tmp_path):
    assert parse_tuh_name(tmp_path / "aaaaaaab_s010_t002.edf") == ("aaaaaaab", "s010", 2)
    assert parse_tuh_name(tmp_path / "recording.edf") == ("recording", None, None)
