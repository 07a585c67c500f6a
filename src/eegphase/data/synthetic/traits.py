"""Subject traits: demographics, psychopathology factors and the hidden physiology they weakly drive."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# Correlation of (p_factor, attention, internalizing, externalizing): a general factor plus specific ones.
FACTOR_NAMES = ("p_factor", "attention", "internalizing", "externalizing")
_FACTOR_CORRELATION = np.array(
    [
        [1.00, 0.55, 0.50, 0.55],
        [0.55, 1.00, 0.15, 0.35],
        [0.50, 0.15, 1.00, 0.10],
        [0.55, 0.35, 0.10, 1.00],
    ]
)

# Links from externalizing (standardised) to the hidden physiology: log amplitude per SD, and Hz per SD.
THETA_PER_EXTERNALIZING = 0.3
BETA_PER_EXTERNALIZING = 0.25
APF_PER_EXTERNALIZING = 0.2


@dataclass(frozen=True)
class SubjectTraits:
    """What one synthetic subject is; NaN marks a value the participants table reports as ``n/a``.

    The fields after ``factors`` are never written to disk: they are the hidden physiology that the signals
    are built from (``alpha_freq`` in Hz, ``rt_scale`` in seconds, gains as multipliers).
    """

    subject: str
    release: str
    index: int
    age: float
    sex: str
    ehq_total: float
    commercial_use: str
    full_pheno: str
    factors: dict[str, float]
    alpha_freq: float
    alpha_gain: float
    aperiodic_exponent: float
    theta_gain: float
    beta_gain: float
    rt_scale: float
    anchor_jitter_seed: int
    movie_engagement: float = 1.0


def _alpha_peak(age: float) -> float:
    return 7.9 + 0.11 * (min(age, 21.0) - 5.0) - 0.015 * max(age - 30.0, 0.0)


def sample_traits(
    rng: np.random.Generator,
    subject: str,
    release: str,
    index: int,
    age_range: tuple[float, float] = (5.0, 21.0),
) -> SubjectTraits:
    """Draw one subject; every physiological link is weak and carries its own noise."""
    age = float(np.round(rng.uniform(*age_range), 4))
    sex = str(rng.choice(["M", "F"], p=[0.62, 0.38]))
    factors = rng.multivariate_normal(np.zeros(4), _FACTOR_CORRELATION)
    values = {name: float(np.round(v, 3)) for name, v in zip(FACTOR_NAMES, factors, strict=True)}
    has_pheno = rng.random() > 0.12
    if not has_pheno:
        values = dict.fromkeys(FACTOR_NAMES, float("nan"))
    elif rng.random() < 0.08:  # a single factor missing, as in the real table
        values[str(rng.choice(FACTOR_NAMES))] = float("nan")
    ehq = float(np.round(np.clip(rng.normal(60, 45), -100, 100), 2)) if rng.random() > 0.1 else float("nan")
    externalizing = np.nan_to_num(factors[3])
    attention = np.nan_to_num(factors[1])
    return SubjectTraits(
        subject=subject,
        release=release,
        index=index,
        age=age,
        sex=sex,
        ehq_total=ehq,
        commercial_use=str(rng.choice(["Yes", "No"], p=[0.8, 0.2])),
        full_pheno="Yes" if has_pheno else "No",
        factors=values,
        # Alpha peak rises ~0.11 Hz a year in childhood (~8 Hz at 5, ~10 Hz at 21) and slowly falls after 30;
        # it is a little slower with more externalizing problems.
        alpha_freq=float(
            np.clip(
                _alpha_peak(age) - APF_PER_EXTERNALIZING * externalizing + rng.normal(0.0, 0.55), 6.5, 12.5
            )
        ),
        alpha_gain=float(np.exp(rng.normal(0.0, 0.3))),
        aperiodic_exponent=float(
            np.clip(1.9 - 0.03 * (min(age, 21.0) - 5.0) + rng.normal(0.0, 0.15), 1.0, 2.4)
        ),
        # Externalizing raises frontal theta and lowers central beta: the theta/beta ratio link, noisy.
        theta_gain=float(np.exp(THETA_PER_EXTERNALIZING * externalizing + rng.normal(0.0, 0.2))),
        beta_gain=float(np.exp(-BETA_PER_EXTERNALIZING * externalizing + rng.normal(0.0, 0.2))),
        rt_scale=float(
            np.clip(
                1.15 - 0.03 * (min(age, 21.0) - 12.0) + 0.07 * attention + rng.normal(0.0, 0.12), 0.55, 2.0
            )
        ),
        anchor_jitter_seed=int(rng.integers(2**31)),
        # Attention problems weaken the movie-evoked response (lower inter-subject correlation).
        movie_engagement=float(np.exp(-0.2 * attention + rng.normal(0.0, 0.15))),
    )
