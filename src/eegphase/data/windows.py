"""Windows tables, one per training mode, built from the manifest and the recordings' events.

Each table has one row per window with where to read it (``key``, ``start``, ``stop`` in cache samples), who and
what it is (``dataset``, ``subject``, ``task``, ``run``, ``release``, ``onset_s``) and the mode's targets under
their own names (``rt_from_stimulus``, ``externalizing``, ...). Every mode also carries the subject table's other
columns (a user's own targets) and the recording label a reader found (``label``); text values become integer
class codes (sorted names) with the names beside them in ``<column>_name``. They are written as
``windows-<mode>.parquet``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from eegphase.data.manifest import Manifest
from eegphase.data.recording import SUBJECT_COLUMNS

MODES = ("challenge1", "challenge2", "pretrain", "movies", "mixed")
MOVIES = ("DespicableMe", "DiaryOfAWimpyKid", "FunwithFractals", "ThePresent")
CCD_TASK = "contrastChangeDetection"
FACTORS = ("p_factor", "attention", "internalizing", "externalizing")
SEX_CODES = {"M": 0.0, "F": 1.0}  # windows carry sex as a number: 0 = male, 1 = female, NaN unknown
LABEL = "label"  # the recording-level label a reader extracts (data.label_pattern)
NAME_SUFFIX = "_name"  # beside a class-coded column: its class names
ID_COLUMNS = ["key", "dataset", "subject", "task", "run", "release", "onset_s", "start", "stop"]


@dataclass(frozen=True)
class WindowConfig:
    """Window lengths, strides and task choices per mode (seconds)."""

    challenge1_offset_s: float = 0.5
    challenge1_length_s: float = 2.0
    challenge2_length_s: float = 4.0
    challenge2_stride_s: float = 2.0
    challenge2_tasks: tuple[str, ...] | None = None  # None: every task
    challenge2_min_subject_s: float = 0.0  # the challenge scores subjects with >= 900 s of EEG (all tasks)
    pretrain_length_s: float = 2.0
    pretrain_stride_s: float = 2.0
    movies_length_s: float = 2.0
    movies_stride_s: float = 2.0
    movies_bin_s: float = 2.0
    mixed_ratio: dict = field(default_factory=lambda: {"hbn": 0.7, "tuh": 0.3})

    @classmethod
    def from_mapping(cls, cfg) -> WindowConfig:
        values = dict(cfg)
        unknown = set(values) - set(cls.__dataclass_fields__)
        if unknown:
            raise KeyError(
                f"unknown windows option(s) {sorted(unknown)}; known: {sorted(cls.__dataclass_fields__)}"
            )
        if values.get("challenge2_tasks") is not None:
            values["challenge2_tasks"] = tuple(values["challenge2_tasks"])
        if "mixed_ratio" in values:
            values["mixed_ratio"] = mixed_shares(dict(values["mixed_ratio"]))
        return cls(**values)


def mixed_shares(ratio: dict) -> dict[str, float]:
    """``windows.mixed_ratio`` as plain floats; one dataset may be null and gets what the others leave, so
    that ``{hbn: null, tuh: 0.3}`` sweeps by ``windows.mixed_ratio.tuh=0.3,0.5`` alone (shares are normalised
    to sum to 1 later)."""
    shares = {str(k): None if v is None else float(v) for k, v in ratio.items()}
    rest = [k for k, v in shares.items() if v is None]
    given = {k: v for k, v in shares.items() if v is not None}
    if len(rest) > 1 or any(v < 0 for v in given.values()):
        raise ValueError(
            f"windows.mixed_ratio {ratio}: shares must be >= 0, with at most one null (the rest)"
        )
    if rest:
        left = 1.0 - sum(given.values())
        if left < 0:
            raise ValueError(
                f"windows.mixed_ratio {ratio}: the given shares exceed 1, leaving none for {rest[0]}"
            )
        given[rest[0]] = left
    return given


def challenge1_trials(events: pd.DataFrame) -> pd.DataFrame:
    """Stimulus and response of each contrast-change trial, as the challenge defines them.

    A trial runs from one ``contrastTrial_start`` to the next (the last to ``end_experiment``, else to the end).
    The stimulus is the first target inside it, the response the first press at or after the stimulus and before
    the trial's end; trials without either are dropped.
    """
    values = events["value"].astype(str).str.strip()
    onsets = events["onset"].to_numpy(float)
    starts = onsets[values == "contrastTrial_start"]
    ends = onsets[values == "end_experiment"]
    end_of_last = ends.max() if len(ends) else math.inf
    stim_mask = values.isin(["left_target", "right_target"]).to_numpy()
    press_mask = values.isin(["left_buttonPress", "right_buttonPress"]).to_numpy()
    feedback = events["feedback"].astype(str).to_numpy() if "feedback" in events else None
    rows = []
    for i, trial_start in enumerate(starts):
        trial_end = starts[i + 1] if i + 1 < len(starts) else end_of_last
        in_trial = (onsets >= trial_start) & (onsets < trial_end)
        stims = np.flatnonzero(in_trial & stim_mask)
        if not len(stims):
            continue
        stim = stims[0]
        presses = np.flatnonzero(in_trial & press_mask & (onsets >= onsets[stim]))
        if not len(presses):
            continue
        press = presses[0]
        correct = np.nan
        if feedback is not None:
            correct = {"smiley_face": 1.0, "sad_face": 0.0}.get(feedback[press], np.nan)
        rows.append(
            {
                "trial_start_s": trial_start,
                "stimulus_onset_s": onsets[stim],
                "target_side": values.iloc[stim].split("_")[0],
                "response_onset_s": onsets[press],
                "rt_from_stimulus": onsets[press] - onsets[stim],
                "correct": correct,
            }
        )
    return pd.DataFrame(
        rows,
        columns=[
            "trial_start_s",
            "stimulus_onset_s",
            "target_side",
            "response_onset_s",
            "rt_from_stimulus",
            "correct",
        ],
    )


def _recording_columns(row: pd.Series) -> dict:
    return {k: row[k] for k in ("key", "dataset", "subject", "task", "run", "release")}


def _sliding(row: pd.Series, length_s: float, stride_s: float, first: int = 0, last: int | None = None):
    """(onset_s, start, stop) of fixed windows inside samples [first, last) of one recording."""
    sfreq = float(row["sfreq"])
    length = int(round(length_s * sfreq))
    stride = int(round(stride_s * sfreq))
    last = int(row["n_times"]) if last is None else min(int(row["n_times"]), last)
    starts = np.arange(first, last - length + 1, stride, dtype=np.int64)
    return starts / sfreq, starts, starts + length


def _frame(records: list[dict], extra: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(records, columns=ID_COLUMNS + extra) if records else None
    if frame is None:
        frame = pd.DataFrame({c: pd.Series(dtype=float) for c in ID_COLUMNS + extra})
    frame["run"] = frame["run"].astype("Int64")
    for col in ("start", "stop"):
        frame[col] = frame[col].astype(np.int64)
    return frame


def subject_targets(manifest: Manifest) -> pd.DataFrame:
    """Per (dataset, subject): the numeric targets windows carry (factors, age, sex code)."""
    subjects = manifest.subjects.copy()
    if not len(subjects):
        return pd.DataFrame(columns=["dataset", "subject", "age", "sex", *FACTORS])
    for col in ("age", *FACTORS):
        subjects[col] = pd.to_numeric(subjects.get(col), errors="coerce") if col in subjects else np.nan
    sex = subjects["sex"] if "sex" in subjects else pd.Series(np.nan, index=subjects.index)
    subjects["sex"] = sex.map(lambda s: SEX_CODES.get(str(s).strip().upper()[:1], np.nan))
    return subjects[["dataset", "subject", "age", "sex", *FACTORS]].drop_duplicates(["dataset", "subject"])


def challenge1_windows(manifest: Manifest, cfg: WindowConfig) -> pd.DataFrame:
    records = []
    recs = manifest.recordings
    for _, row in recs[recs["task"] == CCD_TASK].iterrows():
        trials = challenge1_trials(manifest.entry(row["key"]).events)
        sfreq = float(row["sfreq"])
        length = int(round(cfg.challenge1_length_s * sfreq))
        for trial in trials.itertuples(index=False):
            onset = trial.stimulus_onset_s + cfg.challenge1_offset_s
            start = int(round(onset * sfreq))
            if start < 0 or start + length > int(row["n_times"]):
                continue
            records.append(
                {
                    **_recording_columns(row),
                    "onset_s": onset,
                    "start": start,
                    "stop": start + length,
                    "stimulus_onset_s": trial.stimulus_onset_s,
                    "rt_from_stimulus": trial.rt_from_stimulus,
                    "correct": trial.correct,
                }
            )
    return _frame(records, ["stimulus_onset_s", "rt_from_stimulus", "correct"])


def _fixed_windows(manifest: Manifest, recs: pd.DataFrame, length_s: float, stride_s: float) -> pd.DataFrame:
    records = []
    for _, row in recs.iterrows():
        onsets, starts, stops = _sliding(row, length_s, stride_s)
        base = _recording_columns(row)
        records.extend(
            {**base, "onset_s": o, "start": s, "stop": e}
            for o, s, e in zip(onsets, starts, stops, strict=False)
        )
    return _frame(records, [])


def _with_targets(windows: pd.DataFrame, manifest: Manifest, columns: list[str]) -> pd.DataFrame:
    targets = subject_targets(manifest)[["dataset", "subject", *columns]]
    return windows.merge(targets, on=["dataset", "subject"], how="left")


def challenge2_windows(manifest: Manifest, cfg: WindowConfig) -> pd.DataFrame:
    recs = manifest.recordings
    if cfg.challenge2_min_subject_s > 0:
        # total EEG over every task of the subject, as the challenge counts it
        total = recs.groupby(["dataset", "subject"])["duration_s"].transform("sum")
        recs = recs[total >= cfg.challenge2_min_subject_s]
    if cfg.challenge2_tasks is not None:
        recs = recs[recs["task"].isin(cfg.challenge2_tasks)]
    windows = _with_targets(
        _fixed_windows(manifest, recs, cfg.challenge2_length_s, cfg.challenge2_stride_s),
        manifest,
        list(FACTORS),
    )
    return windows.dropna(subset=list(FACTORS), how="all")  # subjects with no factor at all cannot be scored


def pretrain_windows(manifest: Manifest, cfg: WindowConfig) -> pd.DataFrame:
    windows = _fixed_windows(manifest, manifest.recordings, cfg.pretrain_length_s, cfg.pretrain_stride_s)
    return _with_targets(windows, manifest, ["p_factor", "age", "sex"])


def movies_windows(manifest: Manifest, cfg: WindowConfig) -> pd.DataFrame:
    """Windows from ``video_start`` to ``video_stop`` of each movie, with their movie time and time bin.

    Movie time is counted in samples from the sample nearest ``video_start``: a window's ``movie_time_s`` is its
    sample offset / sfreq and its ``time_bin`` that offset in whole bins, so bin k starts within half a sample of
    k x ``movies_bin_s`` after ``video_start`` and two subjects' bins hold the same moments whatever their
    ``video_start`` onsets. (From ``onset - video_start`` instead, a ``video_start`` that falls between samples
    could put the first window a fraction of a sample before it, at bin -1, and shift every bin of the movie.)
    """
    records = []
    recs = manifest.recordings
    for _, row in recs[recs["task"].isin(MOVIES)].iterrows():
        events = manifest.entry(row["key"]).events
        values = events["value"].astype(str)
        start_onsets = events.loc[values == "video_start", "onset"]
        if not len(start_onsets):
            continue
        t0 = float(start_onsets.iloc[0])
        stops = events.loc[(values == "video_stop") & (events["onset"] > t0), "onset"]
        sfreq = float(row["sfreq"])
        anchor = int(round(t0 * sfreq))  # movie time 0
        last = int(round(float(stops.iloc[0]) * sfreq)) if len(stops) else None
        onsets, starts, ends = _sliding(row, cfg.movies_length_s, cfg.movies_stride_s, anchor, last)
        offsets = starts - anchor  # samples since video_start, >= 0
        bins = np.floor(offsets / (cfg.movies_bin_s * sfreq) + 1e-9).astype(np.int64)
        base = _recording_columns(row)
        for onset, start, stop, offset, time_bin in zip(onsets, starts, ends, offsets, bins, strict=True):
            records.append(
                {
                    **base,
                    "onset_s": onset,
                    "start": start,
                    "stop": stop,
                    "movie": row["task"],
                    "movie_time_s": offset / sfreq,
                    "time_bin": int(time_bin),
                }
            )
    frame = _frame(records, ["movie", "movie_time_s", "time_bin"])
    frame["time_bin"] = frame["time_bin"].astype(np.int64)
    return frame


def mixed_windows(manifest: Manifest, cfg: WindowConfig) -> pd.DataFrame:
    """Pretraining windows of the datasets in ``mixed_ratio``, with a per-row sampling weight for that ratio."""
    windows = pretrain_windows(manifest, cfg)
    windows = windows[windows["dataset"].isin(list(cfg.mixed_ratio))].reset_index(drop=True)
    counts = windows["dataset"].value_counts()
    total = sum(cfg.mixed_ratio[d] for d in counts.index)
    windows["mix_weight"] = [cfg.mixed_ratio[d] / total / counts[d] for d in windows["dataset"]]
    return windows


def class_codes(values: pd.Series) -> tuple[pd.Series, list[str]]:
    """Text values -> float class codes 0..k-1 in sorted name order (NaN stays NaN), and the names."""
    text = values.where(values.isna(), values.astype(str).str.strip())
    names = sorted(text.dropna().unique())
    codes = pd.Categorical(text, categories=names).codes.astype(float)
    codes[codes < 0] = np.nan
    return pd.Series(codes, index=values.index), names


def subject_columns(manifest: Manifest) -> pd.DataFrame:
    """Per (dataset, subject): the subject table's columns beyond ``SUBJECT_COLUMNS`` (a user's own targets);
    numbers stay numbers, text becomes class codes with the names in ``<column>_name``."""
    subjects = manifest.subjects
    extra = [c for c in subjects.columns if c not in (*SUBJECT_COLUMNS, "dataset")]
    table = subjects[["dataset", "subject"]].copy()
    for column in extra:
        values = subjects[column]
        numeric = pd.to_numeric(values, errors="coerce")
        if numeric.notna().sum() == values.notna().sum():
            table[column] = numeric.astype(float)
        else:
            table[column] = class_codes(values)[0]
            table[column + NAME_SUFFIX] = values.where(values.isna(), values.astype(str).str.strip())
    return table.drop_duplicates(["dataset", "subject"])


def recording_labels(manifest: Manifest) -> pd.DataFrame:
    """Per recording ``key``: its label as a class code and its name (empty when no reader set one)."""
    recs = manifest.recordings
    if LABEL not in recs or not recs[LABEL].notna().any():
        return pd.DataFrame(columns=["key"])
    codes, _ = class_codes(recs[LABEL])
    return pd.DataFrame({"key": recs["key"], LABEL: codes, LABEL + NAME_SUFFIX: recs[LABEL].astype(object)})


def with_user_targets(windows: pd.DataFrame, manifest: Manifest) -> pd.DataFrame:
    """Add the recording label and the subject table's other columns (those the table lacks a name for)."""
    for frame, on in (
        (recording_labels(manifest), ["key"]),
        (subject_columns(manifest), ["dataset", "subject"]),
    ):
        new = [c for c in frame.columns if c not in windows.columns]
        if new:
            windows = windows.merge(frame[[*on, *new]], on=on, how="left")
    return windows


BUILDERS = {
    "challenge1": challenge1_windows,
    "challenge2": challenge2_windows,
    "pretrain": pretrain_windows,
    "movies": movies_windows,
    "mixed": mixed_windows,
}


def build_windows(manifest: Manifest, mode: str, cfg: WindowConfig) -> pd.DataFrame:
    """The windows table of one mode (see ``MODES``)."""
    if mode not in BUILDERS:
        raise KeyError(f"unknown windows mode {mode!r}; choose one of {list(BUILDERS)}")
    return with_user_targets(BUILDERS[mode](manifest, cfg), manifest).reset_index(drop=True)
