"""The planted structure is there across subjects and trials, and it is weak (read back from the files)."""

from __future__ import annotations

import itertools
from pathlib import Path

import mne
import numpy as np
import pandas as pd
import scipy.signal
import scipy.stats

SFREQ = 100.0
POSTERIOR = ["E70", "E75", "E83", "E62", "E72"]


def _read(path: Path) -> mne.io.BaseRaw | None:
    raw = mne.io.read_raw_bdf(path, preload=True, verbose="error")
    return raw if len(raw.ch_names) == 129 else None  # skip the 6-channel recording


def _events(path: Path) -> pd.DataFrame:
    return pd.read_csv(str(path).replace("_eeg.bdf", "_events.tsv"), sep="\t", dtype={"value": str})


def test_alpha_peak_frequency_rises_with_age(hbn_bdf: Path) -> None:
    participants = pd.read_csv(hbn_bdf / "participants.tsv", sep="\t")
    ages, peaks = [], []
    for _, row in participants.iterrows():
        files = list((hbn_bdf / row["participant_id"] / "eeg").glob("*_task-RestingState_eeg.bdf"))
        raw = _read(files[0]) if files else None
        if raw is None:
            continue
        data = raw.get_data(picks=POSTERIOR) * 1e6
        closes = _events(files[0]).query("value == 'instructed_toCloseEyes'")["onset"]
        segments = [data[:, int((t + 1) * SFREQ) : int((t + 3.5) * SFREQ)] for t in closes]
        segments = [s for s in segments if s.shape[1] == int(2.5 * SFREQ)]
        freqs, power = scipy.signal.welch(np.concatenate(segments, axis=1), fs=SFREQ, nperseg=200)
        band = (freqs >= 6) & (freqs <= 13)
        ages.append(row["age"])
        peaks.append(freqs[band][power.mean(axis=0)[band].argmax()])
    assert len(ages) >= 8
    rho = scipy.stats.spearmanr(ages, peaks).statistic
    assert 0.3 < rho < 0.99, f"alpha peak vs age: rho={rho:.2f}"


def _challenge1_trials(events: pd.DataFrame) -> list[float | None]:
    """Response times by the challenge's rules; None for a trial with a target but no press."""
    starts = events.index[events["value"] == "contrastTrial_start"].tolist()
    ends = [*starts[1:], events.index[events["value"] == "end_experiment"].max()]
    times = []
    for first, last in zip(starts, ends, strict=True):
        if np.isnan(last):
            continue
        trial = events.loc[first : last - 1]
        targets = trial[trial["value"].str.endswith("_target")]
        if targets.empty:
            continue
        stimulus = targets["onset"].iloc[0]
        presses = trial[trial["value"].str.endswith("_buttonPress") & (trial["onset"] >= stimulus)]
        times.append(presses["onset"].iloc[0] - stimulus if len(presses) else None)
    return times


def test_response_times_vary_and_some_trials_have_no_press(hbn_bdf: Path) -> None:
    per_subject: dict[str, list[float]] = {}
    missing = 0
    for path in sorted(hbn_bdf.glob("sub-*/eeg/*_task-contrastChangeDetection_run-*_eeg.bdf")):
        times = _challenge1_trials(_events(path))
        missing += sum(rt is None for rt in times)
        per_subject.setdefault(path.parts[-3], []).extend(rt for rt in times if rt is not None)
    all_times = np.concatenate([np.asarray(v) for v in per_subject.values()])
    assert missing >= 1
    assert all_times.min() >= 0.3 and all_times.max() <= 3.0
    assert all_times.std() > 0.15
    within = np.mean([np.std(v) for v in per_subject.values() if len(v) > 5])
    assert within > 0.05  # trial-to-trial variation, not only between subjects
    groups = [v for v in per_subject.values() if len(v) > 5]
    assert scipy.stats.f_oneway(*groups).pvalue < 0.05  # subjects differ in speed


def test_movie_drives_inter_subject_correlation(hbn_bdf: Path) -> None:
    """Same movie timestamp correlates across subjects more than a shifted timestamp does; both are weak."""
    segments = []
    for path in sorted(hbn_bdf.glob("sub-*/eeg/*_task-ThePresent_eeg.bdf")):
        raw = _read(path)
        if raw is None:
            continue
        events = _events(path).set_index("value")
        start, stop = (int(round(events.loc[v, "onset"] * SFREQ)) for v in ("video_start", "video_stop"))
        data = raw.get_data(picks=[f"E{i}" for i in range(1, 129)])
        if stop <= data.shape[1]:
            segments.append(data[:, start:stop])
    assert len(segments) >= 4
    length = min(s.shape[1] for s in segments)
    shift = int(5 * SFREQ)

    def mean_correlation(a: np.ndarray, b: np.ndarray) -> float:
        a = (a - a.mean(1, keepdims=True)) / a.std(1, keepdims=True)
        b = (b - b.mean(1, keepdims=True)) / b.std(1, keepdims=True)
        return float((a * b).mean(axis=1).mean())

    aligned, shifted = [], []
    for a, b in itertools.combinations(segments, 2):
        aligned.append(mean_correlation(a[:, : length - shift], b[:, : length - shift]))
        shifted.append(mean_correlation(a[:, : length - shift], b[:, shift:length]))
    assert np.mean(aligned) > np.mean(shifted) + 0.03
    assert np.mean(aligned) < 0.6  # present, but far from identical signals
