"""Channel-name normalisation, events cleaning and the signal-quality check."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from eegphase.data.readers import check_signal_quality
from eegphase.data.readers.channels import (
    is_non_eeg_label,
    normalise_1020_name,
    reference_of,
    ten_twenty_montage,
)
from eegphase.data.readers.events import clean_events, read_events_tsv
from eegphase.data.recording import RecordingError


@pytest.mark.parametrize(
    ("label", "name"),
    [
        ("EEG FP1-REF", "Fp1"),
        ("EEG FP2-LE", "Fp2"),
        ("EEG T3-REF", "T7"),
        ("EEG T4-LE", "T8"),
        ("T5", "P7"),
        ("t6", "P8"),
        ("EEG CZ-REF", "Cz"),
        ("Fc5.", "FC5"),
        ("Cz..", "Cz"),
        ("Afz.", "AFz"),
        ("T10.", "T10"),
        ("fpz", "Fpz"),
        ("EEG EKG1-REF", None),
        ("PHOTIC-REF", None),
        ("EEG 000", None),
        ("E17", None),
    ],
)
def test_normalise_1020_name(label, name):
    assert normalise_1020_name(label) == name
    if name is not None:
        assert name in ten_twenty_montage().ch_names  # the spelling MNE positions


def test_reference_and_non_eeg_labels():
    assert reference_of("EEG FP1-REF") == "REF" and reference_of("EEG O2-LE") == "LE"
    assert reference_of("Fc5.") is None
    assert (
        is_non_eeg_label("EEG EKG1-REF") and is_non_eeg_label("PHOTIC-REF") and is_non_eeg_label("EOG left")
    )
    assert not is_non_eeg_label("EEG FP1-REF") and not is_non_eeg_label("E42")


def test_read_events_tsv_na_and_trial_type(tmp_path):
    path = tmp_path / "x_events.tsv"
    path.write_text("onset\tduration\ttrial_type\tfeedback\n3.0\tn/a\tb\tn/a\n1.0\t0.5\ta\tsmiley_face\n")
    events = read_events_tsv(path)
    assert events["value"].tolist() == ["b", "a"]
    assert np.isnan(events.loc[0, "duration"]) and pd.isna(events.loc[0, "feedback"])


def test_read_events_tsv_without_onset_or_with_text_onset_names_the_file(tmp_path):
    path = tmp_path / "bad_events.tsv"
    path.write_text("time\tvalue\n1\ta\n")
    with pytest.raises(RecordingError, match="bad_events.tsv: events file has no 'onset'"):
        read_events_tsv(path)
    path.write_text("onset\tvalue\nsoon\ta\n")
    with pytest.raises(RecordingError, match="'onset' holds non-numeric value 'soon'"):
        read_events_tsv(path)


def test_clean_events_sorts_and_drops_outside_with_notes():
    events = pd.DataFrame(
        {"onset": [5.0, -1.0, 1.0, np.nan, 10.0, 12.0], "duration": 0.0, "value": list("abcdef"), "extra": 1}
    )
    cleaned, notes = clean_events(events, duration_s=10.0)
    assert cleaned["value"].tolist() == ["c", "a"]
    assert list(cleaned.columns) == ["onset", "duration", "value", "extra"]
    assert sorted(notes) == sorted(
        [
            "dropped 1 events without an onset",
            "dropped 1 events before the start of the data",
            "dropped 2 events after the end of the data (10.000 s)",
        ]
    )


def test_quality_lists_nan_and_flat_channels():
    rng = np.random.default_rng(0)
    data = rng.normal(0, 1e-5, size=(6, 500))
    data[1, 100] = np.nan
    data[4] = 3e-6  # constant offset: flat
    names = [f"E{i}" for i in range(1, 7)]
    assert check_signal_quality(data, names, "rec.set") == ["E2", "E5"]
    assert check_signal_quality(data[[0, 2, 3, 5]], ["a", "b", "c", "d"], "rec.set") == []


@pytest.mark.parametrize("fill", [np.nan, 0.0])
def test_quality_refuses_an_all_nan_or_all_flat_recording(fill):
    data = np.full((4, 200), fill)
    with pytest.raises(RecordingError, match="rec.bdf: 4 of 4 channels are unusable") as error:
        check_signal_quality(data, ["a", "b", "c", "d"], "rec.bdf")
    assert str(error.value.path) == "rec.bdf"


def test_quality_refuses_when_most_channels_are_bad():
    data = np.random.default_rng(1).normal(0, 1e-5, size=(4, 200))
    data[:3] = 0.0
    with pytest.raises(RecordingError, match="3 of 4 channels"):
        check_signal_quality(data, ["a", "b", "c", "d"], "rec.edf")
    with pytest.raises(ValueError, match="does not match 3 channel names"):
        check_signal_quality(data, ["a", "b", "c"], "rec.edf")
