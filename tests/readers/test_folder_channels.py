"""One channel set per folder dataset: real Mumtaz MDD EDFs, and small folders written with two set-ups."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import mne
import numpy as np
import pytest
import scipy.signal
from omegaconf import OmegaConf

from eegphase.data.datasets import make_dataset
from eegphase.data.manifest import Manifest
from eegphase.data.prepare_cache import prepare
from eegphase.data.readers import FolderReader
from eegphase.pipeline.fingerprint import data_key

MUMTAZ_19 = ["Fp1", "Fp2", "F7", "F3", "Fz", "F4", "F8", "T7", "C3", "Cz", "C4", "T8", "P7", "P3", "Pz", "P4",
             "P8", "O1", "O2"]  # fmt: skip
# HS1EC and MDDS5EC carry 'EEG 23A-23R' and 'EEG 24A-24R' (22 signals); HS2EC and MDDS1EC do not (20)
MUMTAZ_FILES = ["HS1EC.edf", "HS2EC.edf", "MDDS1EC.edf", "MDDS5EC.edf"]
SETUP_A = ["Fp1", "Fp2", "C3", "C4", "O1", "O2"]
SETUP_B = ["O2", "C4", "Fz", "Fp2", "O1", "C3", "Pz", "Fp1"]  # other order, two extra scalp channels


def test_mumtaz_subset_caches_the_same_19_channels_and_reports_drops_once(mumtaz_mdd, tmp_path):
    edf = tmp_path / "edf"
    edf.mkdir()
    for name in MUMTAZ_FILES:
        shutil.copy(mumtaz_mdd / "edf" / name, edf / name)
    cache = tmp_path / "cache"
    cmd = [sys.executable, "-m", "eegphase.prepare", "data=folder", f"data.root={edf}",
           f"data.subjects_file={mumtaz_mdd / 'participants.csv'}",
           r"data.subject_pattern='(?P<subject>(H|MDD)S\d+)(EC|EO)'",
           r"data.label_pattern='(?P<label>EC|EO)\.edf$'", f"cache_dir={cache}", "n_jobs=1",
           "progress=false", "modes=[pretrain]"]  # fmt: skip
    result = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "recordings: 4 (built 4, reused 0, skipped 0)" in out
    assert f"19 in every recording: {' '.join(MUMTAZ_19)}" in out
    assert out.count("dropped 'EEG 23A-23R'") == 1 and out.count("dropped 'EEG 24A-24R'") == 1
    assert "dropped 'EEG A2-A1': reference/ear electrode (A2) (4 of 4 recordings)" in out
    assert "no 10-05 scalp position (2 of 4 recordings)" in out

    manifest = Manifest.load(cache)
    assert set(manifest.recordings["n_channels"]) == {19}
    for key in manifest.recordings["key"]:
        assert manifest.entry(key).ch_names == MUMTAZ_19
    assert json.loads((cache / "channels.json").read_text())["folder"]["names"] == MUMTAZ_19
    assert manifest.channels["folder"]["dropped"]["EEG 23A-23R"]["recordings"] == 2

    # each cached channel is its own source channel ('EEG T3-LE' -> T7, ...), not a neighbour
    row = manifest.recordings[manifest.recordings["path"].str.endswith("HS1EC.edf")].iloc[0]
    raw = mne.io.read_raw_edf(row["path"], verbose="error")
    labels = [f"EEG {dict(T7='T3', T8='T4', P7='T5', P8='T6').get(n, n)}-LE" for n in MUMTAZ_19]
    source = mne.filter.filter_data(raw.get_data(picks=labels), 256.0, 1.0, 40.0, verbose="error")
    source = scipy.signal.resample_poly(source, 25, 64, axis=1)
    cached = np.asarray(manifest.entry(row["key"]).memmap()).T
    n = min(source.shape[1], cached.shape[1]) - 400
    corr = np.corrcoef(cached[:, 200:n], source[:, 200:n])[:19, 19:]
    assert (corr.argmax(axis=1) == np.arange(19)).all()
    assert np.diag(corr).min() > 0.9


@pytest.fixture
def two_setups(tmp_path, eeg_files) -> Path:
    """S1, S2 recorded with 6 channels; S3, S4 with the same 6 in another order plus Fz and Pz."""
    folder = tmp_path / "mine"
    for i, names in enumerate([SETUP_A, SETUP_A, SETUP_B, SETUP_B], start=1):
        eeg_files.write_recording(folder / f"S{i}_rest.edf", eeg_files.random_raw(names, 100.0, 10.0, seed=i))
    return folder


def folder_config(root: Path, **options) -> dict:
    source = {"kind": "folder", "root": str(root), "subject_pattern": r"(?P<subject>S\d)_", **options}
    return {"name": "folder", "sources": {"folder": source}, "modes": ["pretrain"]}


def test_two_setups_give_one_channel_set_in_montage_order(two_setups, tmp_path):
    manifest, report, _ = prepare(folder_config(two_setups), tmp_path / "cache", progress=False)
    assert report.skipped == [] and len(manifest.recordings) == 4
    for _, row in manifest.recordings.iterrows():
        assert manifest.entry(row["key"]).ch_names == ["Fp1", "Fp2", "C3", "C4", "O1", "O2"]
        # the cached O1 is the file's O1 whatever its position there
        source = mne.io.read_raw_edf(row["path"], verbose="error").get_data(picks=["O1"])[0]
        cached = np.asarray(manifest.entry(row["key"]).memmap())[:, 4]
        assert np.corrcoef(cached[50:-50], source[50:-50])[0, 1] > 0.95
    lines = report.channels["folder"].summary_lines()
    assert [line for line in lines if "dropped" in line] == [
        "  dropped 'Fz': not in every recording (2 of 4) (2 of 4 recordings)",
        "  dropped 'Pz': not in every recording (2 of 4) (2 of 4 recordings)",
    ]
    every = prepare(folder_config(two_setups, channels="all"), tmp_path / "all", progress=False)[0]
    assert sorted(every.recordings["n_channels"]) == [6, 6, 8, 8]  # 'all' keeps each file's set


def test_channel_list_skips_or_pads_recordings_that_lack_one(two_setups, tmp_path):
    wanted = ["Pz", "O1", "T3"]  # T3 is the old name of T7, which no file has
    manifest, report, _ = prepare(
        folder_config(two_setups, channels=wanted), tmp_path / "skip", progress=False
    )
    assert manifest.recordings.empty
    reasons = dict(report.skipped)
    assert set(reasons) == {str(two_setups / f"S{i}_rest.edf") for i in range(1, 5)}
    assert "lacks channel(s) ['Pz', 'T7']" in reasons[str(two_setups / "S1_rest.edf")]
    assert "lacks channel(s) ['T7']" in reasons[str(two_setups / "S3_rest.edf")]
    assert str(two_setups / "S3_rest.edf") in reasons[str(two_setups / "S3_rest.edf")]

    manifest, report, _ = prepare(
        folder_config(two_setups, channels=["Pz", "O1", "C3"]), tmp_path / "skip2", progress=False
    )
    assert manifest.recordings["subject"].tolist() == ["S3", "S4"] and len(report.skipped) == 2

    cache = tmp_path / "pad"
    options = {"channels": ["Pz", "O1", "C3"], "missing_channels": "pad"}
    manifest, report, _ = prepare(folder_config(two_setups, **options), cache, progress=False)
    assert report.skipped == [] and len(manifest.recordings) == 4
    rows = manifest.recordings.set_index("subject")
    assert rows["n_padded_channels"].to_dict() == {"S1": 1, "S2": 1, "S3": 0, "S4": 0}
    s1 = manifest.entry(rows.at["S1", "key"])
    assert s1.ch_names == ["Pz", "O1", "C3"] and s1.meta["channel_mask"] == [False, True, True]
    assert not np.asarray(s1.memmap())[:, 0].any() and np.asarray(s1.memmap())[:, 1].std() > 1.0
    assert s1.meta["bad_channels"] == []  # padded, not a recorded channel gone flat
    dataset = make_dataset(cache, "pretrain", split=None)
    masks = {
        dataset.windows.at[i, "subject"]: dataset[i]["channel_mask"].tolist() for i in range(len(dataset))
    }
    assert masks == {"S1": [False, True, True], "S2": [False, True, True], "S3": [True] * 3, "S4": [True] * 3}

    with pytest.raises(ValueError, match="channels must be one of"):
        FolderReader(two_setups, channels="most")
    with pytest.raises(ValueError, match="missing_channels must be one of"):
        FolderReader(two_setups, missing_channels="interpolate")


def test_changing_channels_changes_the_cache_keys_and_the_data_key(two_setups, tmp_path):
    cfg = OmegaConf.create({"windows": {}, "split": {}})
    cache = tmp_path / "cache"
    first, _, _ = prepare(folder_config(two_setups), cache, progress=False)
    other, report, _ = prepare(folder_config(two_setups, channels=["C3", "C4"]), cache, progress=False)
    assert report.built == 4 and report.reused == 0  # another channel set is another cache entry
    assert data_key(other.fingerprint, cfg) != data_key(first.fingerprint, cfg)
    again, report, _ = prepare(folder_config(two_setups), cache, progress=False)
    assert report.reused == 4 and data_key(again.fingerprint, cfg) == data_key(first.fingerprint, cfg)
    assert Manifest.load(cache).channels["folder"]["names"] == ["Fp1", "Fp2", "C3", "C4", "O1", "O2"]


def test_an_edited_subject_table_changes_the_data_key_but_reuses_the_recordings(two_setups, tmp_path):
    """Finished phases are reused by their fingerprint, which holds the data key: a target edited in the
    subject table must retrain what read it, while every cached recording stays valid."""
    cfg = OmegaConf.create({"windows": {}, "split": {}})
    cache, table = tmp_path / "cache", tmp_path / "subjects.csv"
    table.write_text("subject,score\nS1,1\nS2,2\nS3,3\nS4,4\n")
    with_table = folder_config(two_setups, subjects_file=str(table))
    first, _, _ = prepare(with_table, cache, progress=False)
    table.write_text("subject,score\nS1,1\nS2,2\nS3,3\nS4,40\n")
    edited, report, _ = prepare(with_table, cache, progress=False)
    assert report.reused == 4 and report.built == 0
    assert edited.subjects.set_index("subject").at["S4", "score"] == 40
    assert data_key(edited.fingerprint, cfg) != data_key(first.fingerprint, cfg)
    again, _, _ = prepare(with_table, cache, progress=False)
    assert data_key(again.fingerprint, cfg) == data_key(edited.fingerprint, cfg)
