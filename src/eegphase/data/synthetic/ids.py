"""Subject ids shaped like the real ones (HBN ``NDARAB793GL3``, TUH ``aaaaaaaa``), drawn from a seed."""

from __future__ import annotations

import string

import numpy as np

from eegphase.data.readers.subjects import HBN_EXCLUDED_SUBJECTS

# The start kit drops these subjects; never issuing them means no synthetic subject is silently lost.
EXCLUDED_HBN_SUBJECTS = frozenset(HBN_EXCLUDED_SUBJECTS)

_UPPER = np.array(list(string.ascii_uppercase))
_LOWER = np.array(list(string.ascii_lowercase))
_DIGITS = np.array(list(string.digits))


def hbn_subject_ids(rng: np.random.Generator, count: int) -> list[str]:
    """``count`` unique ids: NDAR + 2 letters + 3 digits + 2 letters + 1 digit."""
    ids: list[str] = []
    seen: set[str] = set(EXCLUDED_HBN_SUBJECTS)
    while len(ids) < count:
        parts = [
            "NDAR",
            "".join(rng.choice(_UPPER, 2)),
            "".join(rng.choice(_DIGITS, 3)),
            "".join(rng.choice(_UPPER, 2)),
            "".join(rng.choice(_DIGITS, 1)),
        ]
        candidate = "".join(parts)
        if candidate not in seen:
            seen.add(candidate)
            ids.append(candidate)
    return ids


def tuh_subject_ids(rng: np.random.Generator, count: int) -> list[str]:
    """``count`` unique ids of 8 lowercase letters, as in TUH EEG v2."""
    ids: list[str] = []
    seen: set[str] = set()
    while len(ids) < count:
        candidate = "".join(rng.choice(_LOWER, 8))
        if candidate not in seen:
            seen.add(candidate)
            ids.append(candidate)
    return ids
