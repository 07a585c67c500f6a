"""Turn a task draft into channel data: latent sources (background, rhythms, task) mixed by topographies."""

from __future__ import annotations

import numpy as np

from .draft import TaskDraft
from .spatial import N_BACKGROUND_SOURCES, source_anchors, topographies
from .spectra import aperiodic_noise, rhythm, slow_envelope
from .traits import SubjectTraits

# Source amplitudes in microvolts, tuned so channels show ~10-50 uV like real scalp EEG.
BACKGROUND_UV = 11.0
ALPHA_UV = 6.0
THETA_UV = 3.0
BETA_UV = 2.0
SENSOR_NOISE_UV = 1.5
LINE_NOISE_UV = 1.0
PHYSIOLOGY_REGIONS = ["alpha_left", "alpha_right", "alpha_mid", "theta", "beta_left", "beta_right"]


def mix_sources(mixing: np.ndarray, sources: np.ndarray) -> np.ndarray:
    """``mixing @ sources`` as a fixed sequence of elementwise float32 operations.

    A BLAS matrix product may round differently with the thread count, the CPU kernel it dispatches to or the
    BLAS build, so the same seed could give different bytes in another process arrangement; separate
    multiply and add steps are exactly rounded everywhere.
    """
    data = np.zeros((mixing.shape[0], sources.shape[1]), dtype=np.float32)
    term = np.empty_like(data)
    for k in range(sources.shape[0]):
        np.multiply(mixing[:, k : k + 1], sources[k][None, :], out=term)
        data += term
    return data


def synthesize(
    traits: SubjectTraits,
    draft: TaskDraft,
    rng: np.random.Generator,
    electrode_positions: np.ndarray,
    band: tuple[float, float],
    reference_index: int | None = None,
    line_freq: float | None = None,
) -> np.ndarray:
    """(n_electrodes, n_samples) float32 microvolts for one recording.

    ``band`` limits every source (e.g. 0.5-45 Hz for 100 Hz files, so the sampling is legitimate);
    ``reference_index`` re-references to that electrode (HBN: Cz, which then reads zero);
    ``line_freq`` adds mains interference when it is below Nyquist.
    """
    sfreq, n_samples = draft.sfreq, draft.n_samples
    background = aperiodic_noise(rng, N_BACKGROUND_SOURCES, n_samples, sfreq, traits.aperiodic_exponent, band)
    background *= np.float32(BACKGROUND_UV)
    alpha_envelope = ALPHA_UV * traits.alpha_gain * slow_envelope(rng, n_samples, sfreq)
    if draft.alpha_gain is not None:
        alpha_envelope = alpha_envelope * draft.alpha_gain
    alpha = rhythm(rng, 3, n_samples, sfreq, traits.alpha_freq, 0.6) * alpha_envelope.astype(np.float32)
    theta = rhythm(rng, 1, n_samples, sfreq, 6.0, 1.0) * np.float32(THETA_UV * traits.theta_gain)
    beta = rhythm(rng, 2, n_samples, sfreq, 20.0, 3.0) * np.float32(BETA_UV * traits.beta_gain)
    if draft.beta_gain is not None:
        beta *= draft.beta_gain.astype(np.float32)
    task_regions = sorted(draft.sources)
    task = [draft.sources[region].astype(np.float32) for region in task_regions]
    sources = np.concatenate([background, alpha, theta, beta, *(row[None] for row in task)])
    mixing = topographies(
        electrode_positions, source_anchors(PHYSIOLOGY_REGIONS + task_regions), traits.anchor_jitter_seed
    )
    data = mix_sources(mixing, sources)
    sensor_noise = aperiodic_noise(rng, electrode_positions.shape[0], n_samples, sfreq, 0.0, band)
    data += np.float32(SENSOR_NOISE_UV) * sensor_noise
    if line_freq is not None and line_freq < sfreq / 2:
        t = np.arange(n_samples, dtype=np.float32) / np.float32(sfreq)
        data += np.float32(LINE_NOISE_UV) * np.sin(2 * np.pi * line_freq * t + rng.uniform(0, 2 * np.pi))
    if reference_index is not None:
        data -= data[reference_index]
    return data.astype(np.float32, copy=False)
