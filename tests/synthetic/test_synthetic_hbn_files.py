"""The synthetic HBN files are what the real releases are: MNE reads them, names and tables match the doc."""

from __future__ import annotations

import json
from pathlib import Path

import mne
import numpy as np
import pandas as pd
import pytest
from mne_bids import get_entities_from_fname

from eegphase.data.synthetic import generate_hbn

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
]
JUNK = {"boundary", "9999", "break cnt"}
CCD_VALUES = {
    "contrastChangeB1_start",
    "contrastChangeB2_start",
    "contrastChangeB3_start",
    "contrastTrial_start",
    "left_target",
    "right_target",
    "left_buttonPress",
    "right_buttonPress",
    "end_experiment",
}
MOVIE_CODES = {"DespicableMe": (83, 103), "DiaryOfAWimpyKid": (81, 101), "FunwithFractals": (82, 102)}
MOVIE_CODES["ThePresent"] = (84, 104)


def _events(data_file: Path) -> pd.DataFrame:
    stem = data_file.name.rsplit("_eeg.", 1)[0]
    path = data_file.with_name(f"{stem}_events.tsv")
    return pd.read_csv(
        path, sep="\t", dtype={"value": str, "event_code": str, "feedback": str}, keep_default_na=False
    )


def _sidecar(data_file: Path) -> dict:
    stem = data_file.name.rsplit("_eeg.", 1)[0]
    return json.loads(data_file.with_name(f"{stem}_eeg.json").read_text())


def test_set_files_read_back_with_mne(hbn_set: Path) -> None:
    files = sorted(hbn_set.glob("sub-*/eeg/*_eeg.set"))
    assert len(files) >= 10
    n_full = 0
    for path in files:
        assert path.with_suffix(".fdt").is_file(), f"{path} has no .fdt beside it"
        raw = mne.io.read_raw_eeglab(path, preload=True, verbose="error")
        assert raw.info["sfreq"] == 500.0
        assert raw.n_times / raw.info["sfreq"] == pytest.approx(_sidecar(path)["RecordingDuration"])
        if len(raw.ch_names) == 129:
            n_full += 1
            assert raw.ch_names == HBN_NAMES
            positions = raw.get_montage().get_positions()["ch_pos"]
            assert np.isfinite(positions["E75"]).all() and np.linalg.norm(positions["E75"]) > 0.05
            data = raw.get_data(picks=HBN_NAMES[:-1])
            assert 5e-6 < np.median(data.std(axis=1)) < 60e-6  # scalp EEG: tens of microvolts, in volts
            assert np.abs(raw.get_data(picks=["Cz"])).max() < 1e-9  # the reference reads zero
    assert n_full == len(files) - 1  # exactly the one requested 6-channel recording differs


def test_six_channel_recording_when_requested(hbn_set: Path) -> None:
    counts = {}
    for path in sorted(hbn_set.glob("sub-*/eeg/*_channels.tsv")):
        counts[path.name] = len(pd.read_csv(path, sep="\t"))
    assert sorted(set(counts.values())) == [6, 129]
    assert list(counts.values()).count(6) == 1


def test_bdf_files_read_back_with_mne(hbn_bdf: Path) -> None:
    files = sorted(hbn_bdf.glob("sub-*/eeg/*_eeg.bdf"))
    assert len(files) > 60
    for path in files[:12]:
        raw = mne.io.read_raw_bdf(path, verbose="error")
        assert raw.info["sfreq"] == 100.0
        assert raw.n_times / 100.0 == pytest.approx(_sidecar(path)["RecordingDuration"])
        assert raw.ch_names in (HBN_NAMES, HBN_NAMES[:6])


def test_participants_table_matches_the_real_columns_and_files(hbn_bdf: Path) -> None:
    table = pd.read_csv(hbn_bdf / "participants.tsv", sep="\t", keep_default_na=False)
    assert list(table.columns) == PARTICIPANT_COLUMNS
    assert table["participant_id"].str.fullmatch(r"sub-NDAR[A-Z]{2}\d{3}[A-Z]{2}\d").all()
    assert table["age"].astype(float).between(5, 21).all()
    assert (table[["p_factor", "ehq_total"]] == "n/a").any().any()
    for _, row in table.iterrows():
        eeg = hbn_bdf / row["participant_id"] / "eeg"
        for column in PARTICIPANT_COLUMNS[11:]:
            task, _, run = column.partition("_")
            pattern = f"*_task-{task}_run-{run}_eeg.bdf" if run else f"*_task-{task}_eeg.bdf"
            exists = any(eeg.glob(pattern))
            assert row[column] == ("available" if exists else "unavailable"), (row["participant_id"], column)
    assert (table == "unavailable").iloc[:, 11:19].any().any()  # some simulated recordings are missing


def test_file_names_are_valid_bids(hbn_set: Path) -> None:
    for path in sorted(hbn_set.glob("sub-*/eeg/*")):
        entities = get_entities_from_fname(path.name, on_error="raise")
        assert path.parts[-3] == f"sub-{entities['subject']}"
        assert entities["task"] is not None
        assert (entities["run"] is not None) == (entities["task"] == "contrastChangeDetection")
    for name in ("dataset_description.json", "README", "participants.json"):
        assert (hbn_set / name).is_file()
    assert json.loads((hbn_set / "dataset_description.json").read_text())["BIDSVersion"]


def test_events_use_the_real_vocabulary(hbn_bdf: Path) -> None:
    for path in sorted(hbn_bdf.glob("sub-*/eeg/*_eeg.bdf")):
        events = _events(path)
        assert list(events.columns[:5]) == ["onset", "duration", "sample", "value", "event_code"]
        values = set(events["value"].astype(str))
        task = get_entities_from_fname(path.name)["task"]
        if task == "contrastChangeDetection":
            assert values - JUNK <= CCD_VALUES
            assert {"contrastTrial_start", "end_experiment"} <= values
            feedback = set(events["feedback"])
            assert feedback <= {"smiley_face", "sad_face", "non_target", "n/a"}
        elif task == "RestingState":
            codes = events.groupby("value")["event_code"].agg(set)
            assert (codes["resting_start"], codes["instructed_toCloseEyes"]) == ({"90"}, {"30"})
            assert (events["value"] == "instructed_toOpenEyes").sum() == 5
        else:
            start, stop = MOVIE_CODES[task]
            codes = dict(zip(events["value"], events["event_code"], strict=True))
            assert (codes["video_start"], codes["video_stop"]) == (str(start), str(stop))


def test_some_events_fall_after_the_end_of_the_data(hbn_bdf: Path) -> None:
    past_end = 0
    for path in sorted(hbn_bdf.glob("sub-*/eeg/*_eeg.bdf")):
        n_samples = round(_sidecar(path)["RecordingDuration"] * 100)
        past_end += int((_events(path)["sample"] >= n_samples).any())
    assert past_end >= 1


def test_bad_format_is_refused_with_its_name(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="'edf'"):
        generate_hbn(tmp_path / "x", fmt="edf", progress=False)
    assert not (tmp_path / "x").exists()
