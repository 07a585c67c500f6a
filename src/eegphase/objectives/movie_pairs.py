"""The movie pair modes, kept under their old import path: see :mod:`eegphase.objectives.pairs`, which holds
the sampler of every pair mode (movie moments, recording labels, recordings)."""

from __future__ import annotations

from eegphase.objectives.pairs import MOVIE_PAIR_MODES as PAIR_MODES
from eegphase.objectives.pairs import MoviePairSampler, PairDataset, PairSampler, _Pool

__all__ = ["PAIR_MODES", "MoviePairSampler", "PairDataset", "PairSampler", "_Pool"]
