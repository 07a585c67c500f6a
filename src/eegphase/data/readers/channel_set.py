"""One channel set per dataset: which channels every cached recording of a user's folder holds, in which order.

A folder of real recordings rarely has one layout: reference derivations ('EEG A2-A1'), spare inputs
('EEG 23A-23R') and ECG leads come and go from file to file, and a channel count that differs between groups
leaks the label. So the set is decided once per dataset, from the headers of all its recordings, before any
is processed (``select_channels``):

- ``common``: the scalp channels (a 10-05 position, ear/mastoid references excluded) present in every
  recording, in montage order (front to back, left to right);
- a list of names: exactly those, in that order (10-20 spellings are normalised, 'T3' -> 'T7');
- ``all``: every EEG channel of each recording (sets may differ between recordings).

A recording that lacks a channel of the set is skipped with its reason (``missing_channels='skip'``) or gets
a zero channel in its place, listed in the cache entry's channel mask (``missing_channels='pad'``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import mne

from eegphase.data.readers.channels import is_non_eeg_label, normalise_1020_name, scalp_name, scalp_order

CHANNEL_SETS = ("common", "all")
MISSING_CHANNELS = ("skip", "pad")


def parse_channels(channels: str | Sequence[str]) -> str | tuple[str, ...]:
    """'common', 'all' or a tuple of channel names (10-20 spellings normalised); ValueError otherwise."""
    if isinstance(channels, str):
        if channels not in CHANNEL_SETS:
            raise ValueError(f"channels must be one of {CHANNEL_SETS} or a list of names, not {channels!r}")
        return channels
    names = tuple(normalise_1020_name(str(name)) or str(name).strip() for name in channels)
    if not names:
        raise ValueError("channels is an empty list: name at least one channel, or use 'common' or 'all'")
    repeated = sorted(name for name, n in Counter(names).items() if n > 1)
    if repeated:
        raise ValueError(f"channels lists {repeated} more than once (after normalising {list(channels)})")
    return names


def check_missing_channels(value: str) -> str:
    if value not in MISSING_CHANNELS:
        raise ValueError(f"missing_channels must be one of {MISSING_CHANNELS}, not {value!r}")
    return value


def recording_channels(
    raw: mne.io.BaseRaw, channels: str | tuple[str, ...]
) -> tuple[dict[str, str], dict[str, str]]:
    """(label -> name of each usable channel, in recording order; label -> why for each channel dropped).

    ``common`` keeps scalp electrodes only; ``all`` keeps every EEG channel but ECG/EOG-style labels; an
    explicit list may name any EEG-typed channel, so every one is a candidate. Names are the MNE 10-05
    spelling where the label has one, else the label itself.
    """
    kept: dict[str, str] = {}
    dropped: dict[str, str] = {}
    for label, kind in zip(raw.ch_names, raw.get_channel_types(), strict=True):
        if kind != "eeg":
            dropped[label] = f"not EEG (channel type {kind})"
            continue
        if channels == "common":
            name, why = scalp_name(label)
        elif channels == "all" and is_non_eeg_label(label):
            name, why = None, "not EEG (ECG/EOG/EMG/trigger label)"
        else:
            name, why = normalise_1020_name(label) or label.strip(), ""
        if name is None:
            dropped[label] = why
        elif name in kept.values():
            dropped[label] = f"duplicate of {name}"
        else:
            kept[label] = name
    return kept, dropped


@dataclass
class ChannelSelection:
    """The channel set of one dataset and what was left out, decided before any recording is processed."""

    dataset: str
    channels: str | tuple[str, ...]  # the option: 'common', 'all' or the names asked for
    missing_channels: str  # skip | pad
    names: tuple[str, ...] | None  # the channels of every cached recording, in order; None for 'all'
    n_recordings: int = 0
    dropped: dict[str, str] = field(default_factory=dict)  # label -> why, once per dataset
    dropped_in: Counter = field(default_factory=Counter)  # label -> number of recordings it was dropped from
    lacking: dict[str, list[str]] = field(default_factory=dict)  # file -> channels of ``names`` it lacks
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (file, reason) from the header pass

    @property
    def key(self) -> str | list[str]:
        """What the cache key holds: the resolved names (or 'all'), so another set is another entry."""
        return "all" if self.names is None else list(self.names)

    def skipped(self) -> list[tuple[str, str]]:
        """(file, reason) of every recording this selection keeps out of the cache."""
        out = list(self.unreadable)
        if self.missing_channels == "skip":
            out += [
                (path, f"{path}: lacks channel(s) {missing} of the dataset's channel set "
                 f"(data.channels={self._option()}, data.missing_channels=skip)")
                for path, missing in self.lacking.items()
            ]  # fmt: skip
        return out

    def _option(self) -> str:
        return self.channels if isinstance(self.channels, str) else "[" + ",".join(self.channels) + "]"

    def as_dict(self) -> dict:
        """What the manifest stores and a run logs."""
        return {
            "channels": self.channels if isinstance(self.channels, str) else list(self.channels),
            "missing_channels": self.missing_channels,
            "names": None if self.names is None else list(self.names),
            "n_channels": None if self.names is None else len(self.names),
            "n_recordings": self.n_recordings,
            "dropped": {label: {"why": why, "recordings": self.dropped_in[label]} for label, why in
                        sorted(self.dropped.items())},
            "lacking": {path: list(missing) for path, missing in sorted(self.lacking.items())},
        }  # fmt: skip

    def summary_lines(self) -> list[str]:
        """One line for the set, then one per dropped label (never one per recording)."""
        head = f"channels of {self.dataset} (data.channels={self._option()}): "
        if self.names is None:
            lines = [head + "every EEG channel of each recording (sets may differ)"]
        else:
            lines = [head + f"{len(self.names)} in every recording: {' '.join(self.names)}"]
        for label, why in sorted(self.dropped.items()):
            lines.append(
                f"  dropped {label!r}: {why} ({self.dropped_in[label]} of {self.n_recordings} recordings)"
            )
        verb = "skipped" if self.missing_channels == "skip" else "padded with zeros"
        if self.lacking:
            lines.append(f"  {len(self.lacking)} recording(s) lacking channels of the set are {verb}")
        return lines


def select_channels(
    dataset: str,
    views: Iterable[tuple[str, dict[str, str], dict[str, str]]],
    channels: str | tuple[str, ...],
    missing_channels: str,
    unreadable: Sequence[tuple[str, str]] = (),
) -> ChannelSelection:
    """The set of a dataset from each readable recording's (file, kept, dropped) view; see the module doc."""
    views = list(views)
    selection = ChannelSelection(
        dataset, channels, missing_channels, None, len(views) + len(unreadable), unreadable=list(unreadable)
    )
    for _, _, dropped in views:
        for label, why in dropped.items():
            selection.dropped.setdefault(label, why)
            selection.dropped_in[label] += 1
    if channels == "all" or not views:
        return selection
    present = [set(kept.values()) for _, kept, _ in views]
    if channels == "common":
        order = scalp_order()
        every = set.intersection(*present)
        if not every:
            raise ValueError(
                f"data source {dataset!r}: no scalp channel is in every recording "
                f"(smallest set: {sorted(min(present, key=len))}); list the channels in data.channels "
                "and set data.missing_channels=pad, or use data.channels=all"
            )
        names = tuple(sorted(every, key=lambda n: order.get(n, len(order))))
    else:
        names = tuple(channels)
    selection.names = names
    chosen = set(names)
    for _, kept, _ in views:
        for label, name in kept.items():
            if name in chosen:
                continue
            n_have = sum(name in have for have in present)
            why = (
                f"not in every recording ({n_have} of {len(views)})"
                if channels == "common"
                else "not in data.channels"
            )
            selection.dropped.setdefault(label, why)
            selection.dropped_in[label] += 1
    for (path, _, _), have in zip(views, present, strict=True):
        missing = [name for name in names if name not in have]
        if missing:
            selection.lacking[path] = missing
    return selection


__all__ = [
    "CHANNEL_SETS",
    "MISSING_CHANNELS",
    "ChannelSelection",
    "check_missing_channels",
    "parse_channels",
    "recording_channels",
    "select_channels",
]
