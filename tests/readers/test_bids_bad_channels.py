"""Bad channels from BIDS channels.tsv (status=bad): loading puts them in ``raw.info['bads']`` and preprocessing
interpolates them (spherical splines, as MNE does) or zeroes them when no electrode positions are known.
On files of the synthetic HBN generator and on the real PhysioNet EDF and EEGLAB fixtures."""

from __future__ import annotations

import shutil
from pathlib import Path

import mne
import numpy as np
import pandas as pd
import pytest

from eegphase.data.cache import entry_key, source_identity
from eegphase.data.preprocess import PreprocessConfig, preprocess
from eegphase.data.readers import HbnReader, make_reader
from eegphase.data.recording import LoadedRecording, RecordingError
from eegphase.data.synthetic import generate_hbn

CFG = PreprocessConfig()  # the defaults: 100 Hz, 0.5-50 Hz, recorded reference, microvolts


def mark(channels_tsv: Path, bad: list[str], labels: list[str] | None = None) -> None:
    """Write ``channels_tsv`` with a BIDS status column: ``bad`` for ``bad``, ``good`` for the rest."""
    table = pd.read_csv(channels_tsv, sep="\t") if labels is None else pd.DataFrame({"name": labels})
    table["status"] = ["bad" if name in bad else "good" for name in table["name"]]
    table["status_description"] = ["noisy" if name in bad else "n/a" for name in table["name"]]
    table.to_csv(channels_tsv, sep="\t", index=False)


@pytest.fixture(scope="module")
def generated(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("bids") / "R1"
    generate_hbn(root, releases=["R1"], subjects_per_release=2, fmt="bdf", duration_scale=0.02,
                 ccd_trials_per_run=2, seed=0, six_channel_recordings=0, progress=False)  # fmt: skip
    return root


def _resting(reader: HbnReader):
    return next(r for r in reader.discover() if r.task == "RestingState")


def test_hbn_channels_tsv_bad_channel_is_marked_then_interpolated_as_mne_does(generated):
    reader = HbnReader(generated)
    plain = _resting(reader)
    assert plain.channels_path is None  # the generator's channels.tsv has no status column
    clean = preprocess(reader.load(plain), CFG)
    flat = clean.bad_channels  # the generator's BDF reference channel Cz: flat, zeroed (not all-zero)

    tsv = plain.path.with_name(plain.path.name.replace("_eeg.bdf", "_channels.tsv"))
    mark(tsv, ["E5", "E77"])
    refs = reader.discover()
    ref = _resting(reader)
    assert ref.channels_path == tsv
    # the recordings with a plain channels.tsv keep their refs and cache keys
    assert [r for r in refs if r.channels_path is not None] == [ref] and len(refs) > 5
    assert entry_key(ref, CFG) != entry_key(plain, CFG)
    assert [f["path"] for f in source_identity(ref)][-1] == str(tsv.resolve())

    recording = reader.load(ref)
    assert recording.raw.info["bads"] == ["E5", "E77"]
    assert any("marks 2 channel(s) bad: E5, E77" in note for note in recording.notes)
    out = preprocess(recording, CFG)
    assert out.bad_channels == [*flat, "E5", "E77"]
    assert any("interpolated 2 channel(s) marked bad: E5, E77" in note for note in out.notes)

    # the same recording interpolated by MNE itself before preprocessing gives the same array (the flat
    # channels, zeroed by preprocessing, are no source of the splines)
    raw = reader.load(ref).raw.load_data()
    raw.info["bads"] += flat
    raw.interpolate_bads(reset_bads=True, exclude=flat, verbose="error")
    expected = preprocess(LoadedRecording(ref=ref, raw=raw, events=recording.events), CFG)
    np.testing.assert_allclose(out.data, expected.data, rtol=1e-4, atol=1e-3)  # microvolts, float32
    rows = [out.ch_names.index(name) for name in ("E5", "E77")]
    assert np.abs(out.data[:, rows] - clean.data[:, rows]).max() > 0.1  # the recorded signal was replaced
    others = [i for i in range(len(out.ch_names)) if i not in rows]
    np.testing.assert_array_equal(out.data[:, others], clean.data[:, others])


def test_hbn_too_many_marked_channels_refuse_the_recording(generated):
    reader = HbnReader(generated, tasks=["DespicableMe"])
    ref = reader.discover()[0]
    names = reader.load(ref).raw.ch_names
    mark(ref.path.with_name(ref.path.name.replace("_eeg.bdf", "_channels.tsv")), names[:70])
    ref = reader.discover()[0]
    with pytest.raises(
        RecordingError, match=r"7\d of 129 channels are unusable \(70 marked bad in channels\.tsv"
    ):
        preprocess(reader.load(ref), CFG)


def test_channels_tsv_with_status_but_no_name_column_names_the_file(generated):
    reader = HbnReader(generated, tasks=["ThePresent"])
    ref = reader.discover()[0]
    tsv = ref.path.with_name(ref.path.name.replace("_eeg.bdf", "_channels.tsv"))
    pd.DataFrame({"label": ["E1"], "status": ["bad"]}).to_csv(tsv, sep="\t", index=False)
    ref = reader.discover()[0]
    assert ref.channels_path == tsv  # unreadable: loading must read it, and refuses the recording
    with pytest.raises(RecordingError, match="status column but no 'name' column") as error:
        reader.load(ref)
    assert error.value.path == tsv


def _edf_bids_folder(real_fixtures: Path, root: Path) -> Path:
    eeg = root / "sub-001" / "eeg"
    eeg.mkdir(parents=True)
    path = eeg / "sub-001_task-motor_run-3_eeg.edf"
    shutil.copy(real_fixtures / "eegmmidb" / "S001" / "S001R03.edf", path)
    return path


def test_real_edf_in_bids_folder_bad_channel_interpolated_from_its_neighbours(real_fixtures, tmp_path):
    path = _edf_bids_folder(real_fixtures, tmp_path)
    clean = preprocess(
        make_reader("folder", tmp_path).load(make_reader("folder", tmp_path).discover()[0]), CFG
    )
    labels = mne.io.read_raw_edf(path, verbose="error").ch_names  # the file's own labels: 'C3..', 'Fc5.'
    mark(path.with_name("sub-001_task-motor_run-3_channels.tsv"), ["C3..", "EKG"], labels=[*labels, "EKG"])

    reader = make_reader("folder", tmp_path)
    (ref,) = reader.discover()
    assert (ref.subject, ref.task, ref.run) == ("001", "motor", 3)
    recording = reader.load(ref)
    assert recording.raw.info["bads"] == ["C3"]  # under the normalised 10-05 name
    assert any("does not hold: ['EKG']" in note for note in recording.notes)
    out = preprocess(recording, CFG)
    c3 = out.ch_names.index("C3")
    interpolated, recorded = out.data[:, c3], clean.data[:, c3]
    # real EEG: the splines from FC3, C5, C1, CP3... recover the recorded C3 closely, without being it
    # (measured: r 0.992, relative error 0.125; zeroing would give relative error 1)
    assert np.corrcoef(interpolated, recorded)[0, 1] > 0.95
    assert 0.03 < np.linalg.norm(interpolated - recorded) / np.linalg.norm(recorded) < 0.3
    assert out.bad_channels == ["C3"]


def test_real_eeglab_channels_without_positions_are_zeroed(real_fixtures, tmp_path):
    eeg = tmp_path / "sub-01" / "eeg"
    eeg.mkdir(parents=True)
    shutil.copy(real_fixtures / "eeglab" / "test_raw.set", eeg / "sub-01_task-rest_eeg.set")
    shutil.copy(
        real_fixtures / "eeglab" / "test_raw.fdt", eeg / "test_raw.fdt"
    )  # the name the .set points to
    reader = make_reader("folder", tmp_path, channels="all")
    labels = reader.load(reader.discover()[0]).raw.ch_names
    mark(eeg / "sub-01_task-rest_channels.tsv", [labels[3]], labels=labels)
    (ref,) = reader.discover()
    out = preprocess(reader.load(ref), CFG)
    assert out.bad_channels == [labels[3]]
    assert not out.data[:, 3].any() and out.data[:, 2].any()
    assert any(
        f"zeroed 1 channel(s) marked bad (no electrode positions): {labels[3]}" in n for n in out.notes
    )
