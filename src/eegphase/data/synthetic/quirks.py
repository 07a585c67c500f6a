"""The real releases' imperfections, so readers are exercised on them: junk markers and truncated data."""

from __future__ import annotations

import math

import numpy as np

from .draft import TaskDraft


def add_junk_markers(draft: TaskDraft, rng: np.random.Generator) -> None:
    """Sprinkle the markers real files carry that mean nothing for the task (``boundary``, ``9999``, ...)."""
    if rng.random() < 0.3:
        draft.add_event(0.0, "boundary", "n/a")
    if rng.random() < 0.4:
        draft.add_event(rng.uniform(0.0, 0.5), "9999", 9999)
    if rng.random() < 0.15:
        draft.add_event(rng.uniform(0.0, draft.duration), "break cnt", "n/a")


def cut_before_last_event(draft: TaskDraft) -> None:
    """End the data before the last event, leaving that event past the end of the recording."""
    last = max(event["onset"] for event in draft.events)
    new_duration = float(math.floor(last))
    if new_duration <= 1.0 or new_duration >= draft.duration:
        return
    draft.duration = new_duration
    n_samples = draft.n_samples
    if draft.alpha_gain is not None:
        draft.alpha_gain = draft.alpha_gain[:n_samples]
    if draft.beta_gain is not None:
        draft.beta_gain = draft.beta_gain[:n_samples]
    draft.sources = {region: activity[:n_samples] for region, activity in draft.sources.items()}
