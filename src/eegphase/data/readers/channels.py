"""Channel names and montages: map the many spellings of 10-20 names onto MNE's, and pick the montage.

TUH writes ``EEG FP1-REF``, PhysioNet writes ``Fc5.``, old papers write ``T3``; downstream code (channel
adapters, spatial embeddings) wants one spelling, the one in MNE's 10-05 montages (``Fp1``, ``FC5``, ``T7``).
"""

from __future__ import annotations

import re
from functools import cache

import mne

HBN_MONTAGE = "GSN-HydroCel-129"
# MNE 1.13 deprecates 'standard_1020'/'standard_1005' in favour of the 'colin27_*' names (same positions).
_TEN_FIVE_MONTAGES = ("colin27_1005", "standard_1005")
_TEN_TWENTY_MONTAGES = ("colin27_1020", "standard_1020")

# The old 10-20 temporal names; MNE's standard montage positions them under the new names.
OLD_TO_NEW_1020 = {"T3": "T7", "T4": "T8", "T5": "P7", "T6": "P8"}

# Reference suffixes seen in clinical EDF labels (TUH: -REF, -LE; others: -AR, -AVG, -A1, -M1 ...).
_REFERENCE_SUFFIX = re.compile(r"-(REF|LE|AR|AVG|AV|A1|A2|M1|M2|CZ|LINKED)$", re.IGNORECASE)
_EEG_PREFIX = re.compile(r"^EEG[\s_-]+", re.IGNORECASE)
# Labels that are never scalp EEG, matched as whole words anywhere in the label.
_NON_EEG = re.compile(
    r"\b(EKG\d*|ECG\d*|EMG\d*|EOG\w*|LOC|ROC|PHOTIC\w*|IBI|BURSTS|SUPPR|RESP\w*|PULSE|SPO2|"
    r"STI\d*|STATUS|TRIGGER|MARK\w*|EVENT\w*|DC\d+|OSAT|PR|HR)\b",
    re.IGNORECASE,
)


def _montage(names: tuple[str, ...]) -> mne.channels.DigMontage:
    available = set(mne.channels.get_builtin_montages())
    for name in names:
        if name in available:
            return mne.channels.make_standard_montage(name)
    raise RuntimeError(f"none of the montages {names} is built into this MNE version")


@cache
def ten_twenty_montage() -> mne.channels.DigMontage:
    """The 10-05 montage (a superset of 10-20 and 10-10); cached because it is built from a file."""
    return _montage(_TEN_FIVE_MONTAGES)


@cache
def _ten_five_lookup() -> dict[str, str]:
    names = [n for n in ten_twenty_montage().ch_names if n not in OLD_TO_NEW_1020]
    return {name.upper(): name for name in names}


@cache
def hydrocel_montage() -> mne.channels.DigMontage:
    """GSN HydroCel 129; cached because MNE builds it from a file on every call (set_montage copies it)."""
    return mne.channels.make_standard_montage(HBN_MONTAGE)


@cache
def hbn_channel_names() -> tuple[str, ...]:
    """E1..E128, Cz: the 129 HydroCel names in MNE's montage order."""
    return tuple(mne.channels.make_standard_montage(HBN_MONTAGE).ch_names)


def is_non_eeg_label(label: str) -> bool:
    """True for ECG/EMG/EOG/photic/trigger-style labels that must not be fed to an EEG model."""
    return bool(_NON_EEG.search(_EEG_PREFIX.sub("", label.strip())))


def reference_of(label: str) -> str | None:
    """The reference suffix of a clinical label ('EEG FP1-LE' -> 'LE'), None when it has none."""
    match = _REFERENCE_SUFFIX.search(label.strip())
    return match.group(1).upper() if match else None


def normalise_1020_name(label: str) -> str | None:
    """The MNE 10-05 spelling of ``label`` ('EEG FP1-REF' -> 'Fp1', 'Fc5.' -> 'FC5', 'T3' -> 'T7').

    Returns None when the label is not a 10-05 electrode name.
    """
    name = _EEG_PREFIX.sub("", label.strip())
    name = _REFERENCE_SUFFIX.sub("", name)
    name = name.strip(" .")
    name = OLD_TO_NEW_1020.get(name.upper(), name)
    return _ten_five_lookup().get(name.upper())


# 10-05 names that are not scalp EEG: ear and mastoid reference electrodes, and the fiducials.
NON_SCALP_1005 = frozenset({"A1", "A2", "M1", "M2", "LPA", "RPA", "Nz"})


def scalp_name(label: str) -> tuple[str | None, str]:
    """(MNE 10-05 name, '') for a scalp electrode label; (None, why) for anything else.

    A reference derivation such as 'EEG A2-A1' normalises to the ear electrode 'A2' and is refused as a
    reference; ECG/EOG/EMG-style labels and names with no 10-05 position are refused too.
    """
    if is_non_eeg_label(label):
        return None, "not EEG (ECG/EOG/EMG/trigger label)"
    name = normalise_1020_name(label)
    if name in NON_SCALP_1005:
        return None, f"reference/ear electrode ({name})"
    if name is None:
        return None, "no 10-05 scalp position"
    return name, ""


@cache
def scalp_order() -> dict[str, int]:
    """Position of each 10-05 name in the montage (front to back, left to right): the order of a common set."""
    return {name: i for i, name in enumerate(ten_twenty_montage().ch_names)}


def rename_to_1020(raw: mne.io.BaseRaw) -> tuple[dict[str, str], list[str]]:
    """Rename channels to 10-05 names in place where possible.

    Returns (mapping applied, labels left unmapped). A label whose normalised name is already taken by an
    earlier channel is left unmapped too, so duplicates never collide.
    """
    mapping: dict[str, str] = {}
    unmapped: list[str] = []
    taken = set(raw.ch_names)
    for label in raw.ch_names:
        name = normalise_1020_name(label)
        if name is None or (name != label and name in taken):
            unmapped.append(label)
            continue
        if name != label:
            mapping[label] = name
            taken.discard(label)
            taken.add(name)
    if mapping:
        raw.rename_channels(mapping)
    return mapping, unmapped


def set_known_montage(raw: mne.io.BaseRaw) -> str | None:
    """Set the HydroCel-129 or 10-05 montage when every channel has a position in it; return its name."""
    names = set(raw.ch_names)
    if names and names <= set(hbn_channel_names()):
        raw.set_montage(hydrocel_montage(), verbose="error")
        return HBN_MONTAGE
    montage = ten_twenty_montage()
    if names and names <= set(montage.ch_names):
        raw.set_montage(montage, verbose="error")
        return "10-05"
    return None
