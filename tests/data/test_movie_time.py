"""Movie time and time bins come from the sample grid: bin k starts within half a sample of k x bin after
``video_start``, in every recording, wherever ``video_start`` falls between samples."""

from __future__ import annotations

from types import SimpleNamespace

import mne
import numpy as np
import pandas as pd
import pytest

from eegphase.data.prepare_cache import prepare
from eegphase.data.synthetic import generate_hbn
from eegphase.data.windows import WindowConfig, movies_windows

mne.set_log_level("ERROR")
BIN_S = WindowConfig().movies_bin_s


def video_starts(manifest) -> pd.Series:
    """The first ``video_start`` onset (s) of each movie recording, by key."""
    onsets = {}
    for key in manifest.recordings["key"]:
        events = manifest.entry(key).events
        starts = events.loc[events["value"].astype(str) == "video_start", "onset"]
        if len(starts):
            onsets[key] = float(starts.iloc[0])
    return pd.Series(onsets)


def assert_bins_on_the_grid(movies: pd.DataFrame, t0: pd.Series, sfreq: pd.Series) -> None:
    """In every recording: bins 0, 1, 2, ... with no gap, and bin k's first window within half a sample of
    video_start + k x bin."""
    assert len(movies)
    for key, windows in movies.groupby("key"):
        firsts = windows.groupby("time_bin")["start"].min()
        assert list(firsts.index) == list(range(len(firsts))), key
        drift = firsts.to_numpy() / sfreq[key] - (t0[key] + firsts.index.to_numpy() * BIN_S)
        assert np.abs(drift).max() <= 0.5 / sfreq[key] + 1e-9, (key, drift)
        assert (windows["movie_time_s"] >= 0).all(), key


def _manifest(video_starts_s: list[float], sfreq: float = 100.0, n_times: int = 3000):
    keys = [f"rec{i}" for i in range(len(video_starts_s))]
    recordings = pd.DataFrame(
        {
            "key": keys,
            "dataset": "hbn",
            "subject": [f"s{i}" for i in range(len(keys))],
            "task": "DespicableMe",
            "run": pd.array([None] * len(keys), dtype="Int64"),
            "release": "R1",
            "sfreq": sfreq,
            "n_times": n_times,
        }
    )
    entries = {
        key: SimpleNamespace(
            events=pd.DataFrame({"onset": [t0, t0 + 20.0], "value": ["video_start", "video_stop"]})
        )
        for key, t0 in zip(keys, video_starts_s, strict=True)
    }
    return SimpleNamespace(recordings=recordings, entry=entries.__getitem__)


def test_subjects_share_bins_whatever_the_fraction_of_a_sample_video_start_falls_on():
    # 1.272 s is 127.2 samples (nearest sample before it), 2.586 s is 258.6 (after it), 1.81 s on the grid
    manifest = _manifest([1.272, 2.586, 1.81, 1.235])
    movies = movies_windows(manifest, WindowConfig())
    t0 = pd.Series({"rec0": 1.272, "rec1": 2.586, "rec2": 1.81, "rec3": 1.235})
    assert_bins_on_the_grid(movies, t0, pd.Series(100.0, index=t0.index))
    per_subject = movies.groupby("subject")
    bins = [tuple(windows["time_bin"]) for _, windows in per_subject]
    assert len(set(bins)) == 1 and bins[0] == tuple(range(10))  # 20 s of movie, 2 s bins
    times = [tuple(windows["movie_time_s"]) for _, windows in per_subject]
    assert len(set(times)) == 1 and times[0][:2] == (0.0, 2.0)


def test_500hz_set_data_resampled_to_100hz(prepared):
    """The data tests' .set recordings (500 Hz, prepared at 100 Hz): video_start onsets on the 500 Hz grid,
    so off the 100 Hz one by 2-8 ms, on both sides of the nearest sample."""
    _, manifest, _, tables = prepared
    t0 = video_starts(manifest)
    fraction = (t0 * 100.0) % 1.0
    fraction = fraction[(fraction > 1e-6) & (fraction < 1 - 1e-6)]
    assert (fraction < 0.5).any() and (fraction > 0.5).any(), fraction  # rounds down (was bin -1) and up
    sfreq = manifest.recordings.set_index("key")["sfreq"]
    movies = tables["movies"]
    assert_bins_on_the_grid(movies, t0, sfreq)
    assert set(movies["key"]) == set(t0.index)


@pytest.fixture(scope="module")
def bdf_movies(tmp_path_factory):
    root = tmp_path_factory.mktemp("bdf")
    hbn = generate_hbn(
        root / "hbn",
        releases=["R1"],
        subjects_per_release=2,
        fmt="bdf",
        duration_scale=0.03,
        ccd_trials_per_run=2,
        six_channel_recordings=0,
        progress=False,
    )
    data = {"name": "hbn", "sources": {"hbn": {"kind": "hbn", "root": str(hbn)}}, "modes": ["movies"]}
    manifest, _, tables = prepare(data, root / "cache", progress=False)
    return manifest, tables["movies"]


def test_bdf_data(bdf_movies):
    manifest, movies = bdf_movies
    t0 = video_starts(manifest)
    assert len(t0) >= 4 and set(movies["key"]) == set(t0.index)
    assert_bins_on_the_grid(movies, t0, manifest.recordings.set_index("key")["sfreq"])
