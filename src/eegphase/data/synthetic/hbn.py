"""Generate an HBN-EEG-shaped BIDS dataset (see the package docstring for what is planted in it)."""

from __future__ import annotations

import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm import tqdm

from . import bids
from .brain import synthesize
from .ccd import TRIALS_PER_RUN, attention_drift, ccd_run
from .draft import TaskDraft
from .formats import write_bdf, write_eeglab
from .ids import hbn_subject_ids
from .movies import MOVIES, movie_recording
from .quirks import add_junk_markers, cut_before_last_event
from .resting import resting_state
from .spatial import HBN_CHANNELS, hbn_positions
from .staging import staged_output
from .traits import SubjectTraits, sample_traits

RECORDINGS: tuple[tuple[str, int | None], ...] = (
    ("RestingState", None),
    *((movie, None) for movie in MOVIES),
    ("contrastChangeDetection", 1),
    ("contrastChangeDetection", 2),
    ("contrastChangeDetection", 3),
)
FORMATS = {"set": 500.0, "bdf": 100.0}
SIX_CHANNELS = ("E1", "E2", "E3", "E4", "E5", "E6")
MISSING_PROBABILITY = 0.08
TRUNCATED_PROBABILITY = 0.1


@dataclass(frozen=True)
class HbnSettings:
    fmt: str
    duration_scale: float
    ccd_trials_per_run: int
    seed: int

    @property
    def sfreq(self) -> float:
        return FORMATS[self.fmt]

    @property
    def band(self) -> tuple[float, float]:
        # 100 Hz files are band-limited below 50 Hz like the challenge copies; 500 Hz files keep more.
        return (0.5, 45.0) if self.fmt == "bdf" else (0.1, 100.0)


@dataclass(frozen=True)
class SubjectPlan:
    traits: SubjectTraits
    recordings: tuple[tuple[str, int | None], ...]
    truncated: frozenset[tuple[str, int | None]]
    six_channel: tuple[str, int | None] | None = None


def _rng(seed: int, *keys: int) -> np.random.Generator:
    return np.random.default_rng([seed, *keys])


def _task_key(task: str, run: int | None) -> int:
    return zlib.crc32(f"{task}/{run}".encode())


def plan_subjects(
    releases: list[str], subjects_per_release: int, seed: int, six_channel_recordings: int
) -> list[SubjectPlan]:
    """Who exists, which recordings each has, and where the quirks go; all from ``seed``."""
    ids = hbn_subject_ids(_rng(seed, 1), len(releases) * subjects_per_release)
    plans = []
    for index, subject in enumerate(ids):
        release = releases[index // subjects_per_release]
        traits = sample_traits(_rng(seed, 2, index), subject, release, index)
        chooser = _rng(seed, 3, index)
        kept = tuple(rec for rec in RECORDINGS if chooser.random() > MISSING_PROBABILITY)
        truncated = frozenset(rec for rec in kept if chooser.random() < TRUNCATED_PROBABILITY)
        plans.append(SubjectPlan(traits, kept or RECORDINGS[:1], truncated))
    # Like R7, one release (the last) holds the recordings with only 6 channels.
    last_release = [i for i, plan in enumerate(plans) if plan.traits.release == releases[-1]]
    for i in last_release[:six_channel_recordings]:
        plans[i] = SubjectPlan(
            plans[i].traits, plans[i].recordings, plans[i].truncated, plans[i].recordings[0]
        )
    return plans


def build_draft(plan: SubjectPlan, task: str, run: int | None, settings: HbnSettings) -> TaskDraft:
    """Events and task sources of one recording (deterministic per seed, subject, task and run)."""
    traits, sfreq, scale = plan.traits, settings.sfreq, settings.duration_scale
    rng = _rng(settings.seed, 4, traits.index, _task_key(task, run))
    if task == "RestingState":
        draft = resting_state(traits, rng, sfreq, scale)
    elif task in MOVIES:
        draft = movie_recording(traits, rng, sfreq, scale, task)
    else:
        n_trials = settings.ccd_trials_per_run
        drift = attention_drift(_rng(settings.seed, 5, traits.index), 3 * n_trials)
        draft = ccd_run(traits, rng, sfreq, run, drift[(run - 1) * n_trials : run * n_trials])
    add_junk_markers(draft, rng)
    if (task, run) in plan.truncated:
        cut_before_last_event(draft)
    return draft


def write_subject(root: Path, plan: SubjectPlan, settings: HbnSettings) -> int:
    """Write every recording of one subject; returns how many were written."""
    subject = plan.traits.subject
    eeg_dir = root / f"sub-{subject}" / "eeg"
    eeg_dir.mkdir(parents=True, exist_ok=True)
    positions = hbn_positions()
    for task, run in plan.recordings:
        draft = build_draft(plan, task, run, settings)
        signal_rng = _rng(settings.seed, 6, plan.traits.index, _task_key(task, run))
        data = synthesize(
            plan.traits,
            draft,
            signal_rng,
            positions,
            settings.band,
            reference_index=HBN_CHANNELS.index("Cz"),
            line_freq=60.0,
        )
        ch_names, picked_positions = list(HBN_CHANNELS), positions
        if plan.six_channel == (task, run):
            picks = [HBN_CHANNELS.index(name) for name in SIX_CHANNELS]
            data, ch_names, picked_positions = data[picks], list(SIX_CHANNELS), positions[picks]
        stem = eeg_dir / bids.recording_stem(subject, task, run)
        events = bids.write_events(Path(f"{stem}_events.tsv"), draft)
        if settings.fmt == "set":
            markers = list(zip(events["value"].astype(str), events["onset"], strict=True))
            write_eeglab(Path(f"{stem}_eeg.set"), data, draft.sfreq, ch_names, picked_positions, markers)
        else:
            write_bdf(Path(f"{stem}_eeg.bdf"), data, draft.sfreq, ch_names)
        bids.write_channels(Path(f"{stem}_channels.tsv"), ch_names)
        bids.write_eeg_sidecar(Path(f"{stem}_eeg.json"), draft, len(ch_names), settings.band)
    return len(plan.recordings)


def _write_subject_job(args: tuple[Path, SubjectPlan, HbnSettings]) -> int:
    return write_subject(*args)


def generate_hbn(
    out: Path | str,
    releases: list[str] | tuple[str, ...] = ("R1", "R2"),
    subjects_per_release: int = 16,
    fmt: str = "bdf",
    duration_scale: float = 0.2,
    ccd_trials_per_run: int = TRIALS_PER_RUN,
    seed: int = 0,
    n_jobs: int = 1,
    six_channel_recordings: int | None = None,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write a synthetic HBN-EEG BIDS dataset to ``out`` and return it.

    ``six_channel_recordings`` defaults to 1 when the last release has at least 10 subjects, else 0.
    """
    if fmt not in FORMATS:
        raise ValueError(f"format={fmt!r} is not supported; use one of {sorted(FORMATS)}")
    if duration_scale <= 0 or subjects_per_release < 1 or ccd_trials_per_run < 1:
        raise ValueError(
            "duration_scale, subjects_per_release and ccd_trials_per_run must be positive "
            f"(got {duration_scale}, {subjects_per_release}, {ccd_trials_per_run})"
        )
    releases = [str(release) for release in releases]
    if six_channel_recordings is None:
        six_channel_recordings = 1 if subjects_per_release >= 10 else 0
    settings = HbnSettings(fmt, float(duration_scale), int(ccd_trials_per_run), int(seed))
    plans = plan_subjects(releases, subjects_per_release, settings.seed, six_channel_recordings)
    record = {
        "mode": "hbn",
        "releases": releases,
        "subjects_per_release": subjects_per_release,
        **asdict(settings),
    }
    with staged_output(Path(out), record, overwrite) as stage:
        total = sum(len(plan.recordings) for plan in plans)
        jobs = [(stage, plan, settings) for plan in plans]
        with tqdm(total=total, unit="rec", desc="synthetic HBN", disable=not progress) as bar:
            if n_jobs > 1:
                with ProcessPoolExecutor(max_workers=n_jobs) as pool:
                    for written in pool.map(_write_subject_job, jobs):
                        bar.update(written)
            else:
                for job in jobs:
                    bar.update(_write_subject_job(job))
        available = {
            plan.traits.subject: {bids.task_column(task, run) for task, run in plan.recordings}
            for plan in plans
        }
        bids.write_participants(stage, [plan.traits for plan in plans], available)
        tasks = sorted({task for task, _ in RECORDINGS})
        bids.write_dataset_files(
            stage, releases, tasks, "Signals and events are simulated; see eegphase docs."
        )
    return Path(out)
