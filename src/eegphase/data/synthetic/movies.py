"""Movie watching: sources driven by the movie itself, identical for every subject at the same movie time.

The drive is a deterministic function of (movie, time) seeded by the movie's name, so two subjects watching
the same movie share it (inter-subject correlation) while different timestamps do not.
"""

from __future__ import annotations

import zlib
from functools import lru_cache

import numpy as np

from .draft import TaskDraft, whole_seconds
from .spatial import MOVIE_REGIONS
from .spectra import aperiodic_noise, slow_envelope
from .traits import SubjectTraits

# name: (video_start code, video_stop code, length in seconds), from the real releases.
MOVIES = {
    "DespicableMe": (83, 103, 170.5),
    "DiaryOfAWimpyKid": (81, 101, 117.4),
    "FunwithFractals": (82, 102, 163.0),
    "ThePresent": (84, 104, 203.1),
}
MOVIE_DRIVE_UV = 6.0


@lru_cache(maxsize=16)
def movie_drive(movie: str, sfreq: float) -> np.ndarray:
    """(n_movie_regions, movie samples) unit-scale drive; the same for every subject and every call."""
    rng = np.random.default_rng(zlib.crc32(movie.encode()))
    n_samples = int(np.ceil(MOVIES[movie][2] * sfreq))
    drive = aperiodic_noise(rng, len(MOVIE_REGIONS), n_samples, sfreq, 1.0, (1.0, min(12.0, sfreq / 2 - 1)))
    scenes = np.stack([slow_envelope(rng, n_samples, sfreq, depth=0.6) for _ in MOVIE_REGIONS])
    drive = drive * scenes
    drive.setflags(write=False)
    return drive


def movie_recording(
    traits: SubjectTraits, rng: np.random.Generator, sfreq: float, scale: float, movie: str
) -> TaskDraft:
    """Lead-in, the first ``scale`` of the movie (video_start .. video_stop), a short tail."""
    start_code, stop_code, length = MOVIES[movie]
    watched = max(5.0, length * scale)
    lead_samples = int(round(rng.uniform(1.0, 3.0) * sfreq))
    lead = lead_samples / sfreq
    draft = TaskDraft(movie, None, sfreq, whole_seconds(lead + watched + rng.uniform(0.5, 2.0)))
    draft.add_event(lead, "video_start", start_code)
    draft.add_event(lead + watched, "video_stop", stop_code)
    drive = movie_drive(movie, sfreq)
    n_watched = min(int(round(watched * sfreq)), drive.shape[1])
    engagement = MOVIE_DRIVE_UV * traits.movie_engagement * np.exp(rng.normal(0.0, 0.1))
    for row, region in enumerate(MOVIE_REGIONS):
        draft.source(region)[lead_samples : lead_samples + n_watched] = engagement * drive[row, :n_watched]
    gain = np.ones(draft.n_samples, dtype=np.float32)
    gain[lead_samples : lead_samples + n_watched] = 0.8  # visual input suppresses alpha a little
    draft.alpha_gain = gain
    return draft
