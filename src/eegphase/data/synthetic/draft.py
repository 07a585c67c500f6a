"""What a task builder hands to the signal synthesis: timing, events and the task's own source activity."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np


@dataclass
class TaskDraft:
    """One recording before synthesis.

    ``events`` are dicts with at least onset (s), value and event_code; extra keys become task-specific
    columns. ``alpha_gain`` (n_samples,) scales posterior alpha (eyes, attention), ``beta_gain`` central beta
    (movement preparation and rebound); ``sources`` maps a region
    of ``spatial.REGION_ANCHORS`` to its (n_samples,) activity in microvolts.
    """

    task: str
    run: int | None
    sfreq: float
    duration: float
    events: list[dict] = field(default_factory=list)
    alpha_gain: np.ndarray | None = None
    beta_gain: np.ndarray | None = None
    sources: dict[str, np.ndarray] = field(default_factory=dict)
    extra_columns: tuple[str, ...] = ()

    @property
    def n_samples(self) -> int:
        return int(round(self.duration * self.sfreq))

    def add_event(self, onset: float, value: str, event_code: object = "n/a", **extra: object) -> None:
        self.events.append({"onset": float(onset), "value": value, "event_code": event_code, **extra})

    def source(self, region: str) -> np.ndarray:
        """The (mutable) activity of ``region``, created as zeros on first use."""
        if region not in self.sources:
            self.sources[region] = np.zeros(self.n_samples, dtype=np.float32)
        return self.sources[region]


def whole_seconds(seconds: float) -> float:
    """EDF/BDF data records are 1 s long, so every recording lasts a whole number of seconds."""
    return float(math.ceil(seconds))


def add_waveform(target: np.ndarray, sfreq: float, onset: float, waveform: np.ndarray) -> None:
    """Add ``waveform`` into ``target`` starting at ``onset`` seconds, clipped at both ends."""
    start = int(round(onset * sfreq))
    stop = min(start + waveform.size, target.size)
    if start >= target.size or stop <= max(start, 0):
        return
    offset = max(0, -start)
    target[max(start, 0) : stop] += waveform[offset : offset + stop - max(start, 0)]
