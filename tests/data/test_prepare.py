"""End to end: synthetic BIDS + EDF files -> cache -> windows tables, checked against independent computations."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import mne
import numpy as np
import pandas as pd
import pytest
import scipy.io

from eegphase.data.cache import CHUNK, RecordingCache
from eegphase.data.manifest import Manifest
from eegphase.data.prepare_cache import prepare
from eegphase.data.windows import WindowConfig, build_windows

from .conftest import MODES, hbn_tuh_config

ROOT = Path(__file__).resolve().parents[2]
TARGETS = {"left_target", "right_target"}
PRESSES = {"left_buttonPress", "right_buttonPress"}


def expected_challenge1(events_tsv: Path) -> list[tuple[float, float]]:
    """(stimulus onset, response time) per usable trial, by walking the events file as a state machine."""
    events = pd.read_csv(events_tsv, sep="\t", na_values="n/a").sort_values("onset", kind="stable")
    trials, current = [], None
    for onset, value in zip(events["onset"], events["value"].astype(str), strict=False):
        if value == "contrastTrial_start":
            current = {"stim": None, "press": None}
            trials.append(current)
        elif value == "end_experiment":
            current = None
        elif current is not None and value in TARGETS and current["stim"] is None:
            current["stim"] = onset
        elif (
            current is not None
            and value in PRESSES
            and current["stim"] is not None
            and current["press"] is None
        ):
            current["press"] = onset
    return [
        (t["stim"], t["press"] - t["stim"])
        for t in trials
        if t["stim"] is not None and t["press"] is not None
    ]


def test_manifest_lists_good_recordings_and_reports_the_six_channel_one(prepared, small_sources):
    cache, manifest, report, _ = prepared
    hbn, tuh = small_sources
    n_files = len(list(hbn.rglob("*_eeg.set"))) + len(list(tuh.rglob("*.edf")))
    assert len(manifest.recordings) == n_files - 1
    assert len(report.skipped) == 1 and "6 EEG channels" in report.skipped[0][1]
    assert Path(report.skipped[0][0]).exists()
    skipped = pd.read_parquet(cache / "skipped.parquet")
    assert skipped["reason"].str.contains("6 EEG channels").all()
    hbn_rows = manifest.recordings[manifest.recordings["dataset"] == "hbn"]
    assert set(hbn_rows["n_channels"]) == {129} and set(hbn_rows["sfreq"]) == {100.0}


def test_cached_signal_matches_mne_filtered_and_resampled(prepared):
    """The fast path (resample, then filter) agrees with MNE's filter-then-resample on the same file."""
    _, manifest, _, _ = prepared
    row = manifest.recordings[manifest.recordings["task"] == "RestingState"].iloc[0]
    raw = mne.io.read_raw_eeglab(row["path"], preload=True)
    raw.filter(0.5, 50.0).resample(100.0)
    reference = raw.get_data().T * 1e6
    cached = np.asarray(manifest.entry(row["key"]).memmap())
    assert cached.shape == reference.shape
    inner = slice(300, -300)  # edges differ by the filters' transients
    err = np.abs(cached[inner] - reference[inner]).max()
    assert err < 0.05 * np.abs(reference[inner]).max()
    assert np.corrcoef(cached[inner, 10], reference[inner, 10])[0, 1] > 0.999


def test_challenge1_targets_equal_an_independent_computation(prepared):
    _, manifest, _, tables = prepared
    windows = tables["challenge1"]
    assert len(windows) > 20
    ccd = manifest.recordings[manifest.recordings["task"] == "contrastChangeDetection"]
    checked = 0
    for _, rec in ccd.iterrows():
        expected = expected_challenge1(Path(rec["path"].replace("_eeg.set", "_events.tsv")))
        fits = [(s, rt) for s, rt in expected if int(round((s + 0.5) * 100)) + 200 <= rec["n_times"]]
        got = windows[windows["key"] == rec["key"]].sort_values("stimulus_onset_s")
        assert np.allclose(got["stimulus_onset_s"], [s for s, _ in fits])
        assert np.allclose(got["rt_from_stimulus"], [rt for _, rt in fits])
        assert np.allclose(got["onset_s"], got["stimulus_onset_s"] + 0.5)
        assert ((got["stop"] - got["start"]) == 200).all()
        checked += len(got)
    assert checked == len(windows)


def test_windows_stay_inside_their_recordings_and_carry_targets(prepared):
    _, manifest, _, tables = prepared
    n_times = manifest.recordings.set_index("key")["n_times"]
    for mode in MODES:
        table = pd.read_parquet(prepared[0] / f"windows-{mode}.parquet")
        pd.testing.assert_frame_equal(table, tables[mode])
        for column in ("subject", "task", "run", "onset_s", "split"):
            assert column in table, (mode, column)
        assert (table["start"] >= 0).all() and (table["stop"] <= table["key"].map(n_times)).all(), mode
    assert {"externalizing", "p_factor"} <= set(tables["challenge2"])
    assert {"p_factor", "age", "sex"} <= set(tables["pretrain"])
    assert set(tables["mixed"]["dataset"]) == {"hbn", "tuh"}
    shares = tables["mixed"].groupby("dataset")["mix_weight"].sum()
    assert shares["hbn"] == pytest.approx(0.7) and shares["tuh"] == pytest.approx(0.3)
    movies = tables["movies"]
    assert set(movies["task"]) <= {"DespicableMe", "DiaryOfAWimpyKid", "FunwithFractals", "ThePresent"}
    assert (movies["time_bin"] == np.floor(movies["movie_time_s"] / 2.0 + 1e-9)).all()
    assert (movies["movie_time_s"] >= 0).all()


def test_challenge2_minimum_of_eeg_per_subject_counts_every_task(prepared):
    _, manifest, _, tables = prepared
    recs = manifest.recordings[manifest.recordings["dataset"] == "hbn"]
    totals = recs.groupby("subject")["duration_s"].sum()  # every task, not only those challenge 2 windows
    threshold = float(totals.median())
    kept = build_windows(manifest, "challenge2", WindowConfig(challenge2_min_subject_s=threshold))
    unfiltered = set(tables["challenge2"].loc[tables["challenge2"]["dataset"] == "hbn", "subject"])
    expected = {s for s in unfiltered if totals[s] >= threshold}
    assert 0 < len(expected) < len(unfiltered)  # the threshold really splits the subjects
    assert set(kept.loc[kept["dataset"] == "hbn", "subject"]) == expected
    assert (
        len(build_windows(manifest, "challenge2", WindowConfig(challenge2_min_subject_s=totals.max() + 1)))
        == 0
    )


def test_splits_are_disjoint_and_identical_across_modes(prepared):
    _, _, _, tables = prepared
    seen: dict[str, str] = {}
    for mode, table in tables.items():
        per_subject = table.groupby("subject")["split"].nunique()
        assert (per_subject == 1).all(), mode
        for subject, split in table.groupby("subject")["split"].first().items():
            assert seen.setdefault(subject, split) == split, (mode, subject)
    assert {"train", "val", "test"} <= set(seen.values())


def _tree_digest(cache: Path) -> dict[str, str]:
    out = {}
    for entry in sorted((cache / "recordings").iterdir()):
        out[entry.name] = hashlib.sha256((entry / CHUNK).read_bytes()).hexdigest()
    return out


def test_killed_prepare_resumes_to_an_identical_cache(prepared, small_sources, tmp_path):
    reference, _, _, tables = prepared
    hbn, tuh = small_sources
    cache = tmp_path / "cache"
    cmd = [sys.executable, "-m", "eegphase.prepare", "data=hbn_tuh", f"data.root={hbn}", f"data.tuh_root={tuh}",
           f"cache_dir={cache}", "n_jobs=1", "progress=false"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        done = list((cache / "recordings").glob("*.zarr")) if (cache / "recordings").exists() else []
        if len(done) >= 3:
            break
        time.sleep(0.05)
    assert proc.poll() is None, (
        f"prepare finished before it could be killed: {proc.stderr.read().decode()[-2000:]}"
    )
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (cache / "recordings.parquet").exists()
    for entry in (cache / "recordings").glob("*.zarr"):  # whatever was published is complete
        RecordingCache(cache).verify(entry.name[: -len(".zarr")], checksum=True)

    rerun = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "reused" in rerun.stdout
    assert _tree_digest(cache) == _tree_digest(reference)
    assert not any((cache / "tmp").iterdir())
    pd.testing.assert_frame_equal(Manifest.load(cache).recordings, Manifest.load(reference).recordings)
    for mode in MODES:
        pd.testing.assert_frame_equal(pd.read_parquet(cache / f"windows-{mode}.parquet"), tables[mode])


def test_corrupt_entry_is_rebuilt_not_used(prepared, small_sources, tmp_path):
    reference, manifest, _, _ = prepared
    hbn, tuh = small_sources
    cache = tmp_path / "cache"
    shutil.copytree(reference, cache)
    key = manifest.recordings["key"].iloc[0]
    chunk = cache / "recordings" / f"{key}.zarr" / CHUNK
    chunk.write_bytes(chunk.read_bytes()[:1000])
    _, report, _ = prepare(hbn_tuh_config(hbn, tuh), cache, progress=False)
    assert report.built == 1 and len(report.rebuilt) == 1 and "truncated" in report.rebuilt[0][1]
    assert _tree_digest(cache) == _tree_digest(reference)


def _write_edf(path: Path, data: np.ndarray, sfreq: float = 160.0) -> None:
    names = ["Fp1", "Fp2", "C3", "C4", "O1", "O2"]
    raw = mne.io.RawArray(data, mne.create_info(names, sfreq, "eeg"))
    mne.export.export_raw(path, raw, fmt="edf", overwrite=True)


def _write_set_without_fdt(path: Path, data: np.ndarray) -> None:
    """An EEGLAB .set that points at a separate .fdt, which is then missing."""
    raw = mne.io.RawArray(data, mne.create_info(["Fp1", "Fp2", "C3", "C4", "O1", "O2"], 160.0, "eeg"))
    mne.export.export_raw(path, raw, fmt="eeglab", overwrite=True)
    mat = {k: v for k, v in scipy.io.loadmat(path, appendmat=False).items() if not k.startswith("__")}
    mat["data"] = path.with_suffix(".fdt").name
    scipy.io.savemat(path, mat, appendmat=False)


def test_bad_files_are_skipped_and_named_while_the_rest_is_cached(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "mine"
    folder.mkdir()
    for name in ("P01_rest.edf", "P02_rest.edf", "P03_rest.edf", "P04_rest.edf"):
        _write_edf(folder / name, rng.normal(0, 20e-6, (6, 1600)))
    truncated = folder / "P02_rest.edf"
    truncated.write_bytes(truncated.read_bytes()[:-3000])
    flat = folder / "P03_rest.edf"
    _write_edf(flat, np.zeros((6, 1600)))
    orphan = folder / "P04_rest.set"
    _write_set_without_fdt(orphan, rng.normal(0, 20e-6, (6, 1600)))
    (folder / "P04_rest.edf").unlink()
    subjects = tmp_path / "subjects.csv"
    pd.DataFrame({"subject": ["P01", "P02", "P03", "P04"], "score": [1.0, 2.0, 3.0, 4.0]}).to_csv(
        subjects, index=False
    )
    data_cfg = {
        "sources": {
            "folder": {
                "kind": "folder",
                "root": str(folder),
                "subjects_file": str(subjects),
                "subject_pattern": r"(?P<subject>P\d+)_",
            }  # fmt: skip
        },
        "modes": ["pretrain"],
    }
    manifest, report, tables = prepare(data_cfg, tmp_path / "cache", progress=False)
    assert manifest.recordings["subject"].tolist() == ["P01"]
    reasons = dict(report.skipped)
    assert set(reasons) == {str(truncated), str(flat), str(orphan)}
    assert "channels are unusable" in reasons[str(flat)]
    assert "P04_rest.fdt" in reasons[str(orphan)]
    assert str(truncated) in reasons[str(truncated)]
    assert len(tables["pretrain"]) > 0


def _blocked_on(pid: int, lock: Path) -> bool:
    """Whether process ``pid`` waits for ``lock`` (a blocked flock shows as ``->`` in /proc/locks)."""
    inode = os.stat(lock).st_ino
    for line in Path("/proc/locks").read_text().splitlines():
        fields = line.split()  # "1: -> FLOCK ADVISORY WRITE <pid> <major>:<minor>:<inode> 0 EOF"
        if "->" not in fields:
            continue
        at = fields.index("->")
        if fields[at + 4] == str(pid) and int(fields[at + 5].rsplit(":", 1)[1]) == inode:
            return True
    return False


@pytest.mark.skipif(not Path("/proc/locks").exists(), reason="needs Linux /proc/locks to see a waiting flock")
def test_prepare_cli_waits_for_a_run_preparing_the_same_cache(prepared, small_sources, tmp_path):
    """``python -m eegphase.prepare`` takes ``<cache_dir>/.prepare.lock`` as ``eegphase.run`` does: started while
    another process holds it (here this test, standing in for a run), it waits, then finds the cache that
    process built and preprocesses nothing (before, it preprocessed every recording a second time)."""
    from eegphase.locks import file_lock

    reference = prepared[0]
    hbn, tuh = small_sources
    cache = tmp_path / "cache"
    lock = cache / ".prepare.lock"
    cmd = [sys.executable, "-m", "eegphase.prepare", "data=hbn_tuh", f"data.root={hbn}", f"data.tuh_root={tuh}",
           f"cache_dir={cache}", "n_jobs=1", "progress=false"]  # fmt: skip
    with file_lock(lock):
        proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.time() + 300  # start-up on a busy machine; not a speed check
        while time.time() < deadline and proc.poll() is None and not _blocked_on(proc.pid, lock):
            time.sleep(0.05)
        assert proc.poll() is None, f"prepare did not wait for the lock:\n{proc.communicate()[1][-3000:]}"
        assert _blocked_on(proc.pid, lock)
        assert not (cache / "recordings.parquet").exists()  # it waits before reading any recording
        shutil.copytree(reference, cache, dirs_exist_ok=True)  # what the lock holder builds meanwhile
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert "(built 0, reused" in out, out
