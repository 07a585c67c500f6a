"""RestingState: eyes open ~20 s / closed ~40 s, five times; alpha rises when the eyes close."""

from __future__ import annotations

import numpy as np

from .draft import TaskDraft, whole_seconds
from .spectra import smooth_steps
from .traits import SubjectTraits

CYCLES = 5
OPEN_S = 20.0
CLOSED_S = 40.0


def resting_state(traits: SubjectTraits, rng: np.random.Generator, sfreq: float, scale: float) -> TaskDraft:
    """Events resting_start (90), instructed_toOpenEyes (20), instructed_toCloseEyes (30)."""
    open_s, closed_s = max(2.0, OPEN_S * scale), max(4.0, CLOSED_S * scale)
    start = rng.uniform(1.0, 3.0)
    t = start + rng.uniform(0.5, 1.5)
    intervals = []
    for _ in range(CYCLES):
        opened = t
        closed = opened + open_s * rng.uniform(0.95, 1.05)
        t = closed + closed_s * rng.uniform(0.95, 1.05)
        intervals.append((opened, closed, t))
    draft = TaskDraft("RestingState", None, sfreq, whole_seconds(t + rng.uniform(0.5, 2.0)))
    draft.add_event(start, "resting_start", 90)
    gain = np.ones(draft.n_samples, dtype=np.float32)
    reactivity = 2.6 * np.exp(rng.normal(0.0, 0.2))  # how much this subject's alpha grows with eyes closed
    for opened, closed, end in intervals:
        draft.add_event(opened, "instructed_toOpenEyes", 20)
        draft.add_event(closed, "instructed_toCloseEyes", 30)
        gain[int(closed * sfreq) : int(end * sfreq)] = reactivity
    draft.alpha_gain = smooth_steps(gain, sfreq, 0.8)
    return draft
