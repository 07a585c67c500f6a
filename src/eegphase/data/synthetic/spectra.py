"""Coloured and narrow-band noise made in the frequency domain (vectorised, float32)."""

from __future__ import annotations

import numpy as np
import scipy.fft
from scipy.ndimage import uniform_filter1d


def _shaped_noise(rng: np.random.Generator, n_sources: int, n_samples: int, gain: np.ndarray) -> np.ndarray:
    white = rng.standard_normal((n_sources, n_samples), dtype=np.float32)
    spectrum = scipy.fft.rfft(white, axis=1)
    spectrum *= gain.astype(np.complex64)
    shaped = scipy.fft.irfft(spectrum, n=n_samples, axis=1).astype(np.float32)
    shaped /= shaped.std(axis=1, keepdims=True) + np.float32(1e-12)
    return shaped


def band_mask(freqs: np.ndarray, low: float, high: float, edge: float = 0.5) -> np.ndarray:
    """Smooth 0..1 pass-band between ``low`` and ``high`` Hz (raised-cosine edges ``edge`` Hz wide)."""
    rise = np.clip((freqs - (low - edge)) / (2 * edge), 0.0, 1.0)
    fall = np.clip(((high + edge) - freqs) / (2 * edge), 0.0, 1.0)
    return (0.5 - 0.5 * np.cos(np.pi * rise)) * (0.5 - 0.5 * np.cos(np.pi * fall))


def aperiodic_noise(
    rng: np.random.Generator,
    n_sources: int,
    n_samples: int,
    sfreq: float,
    exponent: float,
    band: tuple[float, float],
) -> np.ndarray:
    """Unit-variance 1/f^exponent noise limited to ``band`` Hz: the EEG background."""
    freqs = scipy.fft.rfftfreq(n_samples, 1.0 / sfreq)
    gain = np.maximum(freqs, 1.0) ** (-exponent / 2.0) * band_mask(freqs, *band)
    return _shaped_noise(rng, n_sources, n_samples, gain)


def rhythm(
    rng: np.random.Generator, n_sources: int, n_samples: int, sfreq: float, center: float, width: float
) -> np.ndarray:
    """Unit-variance narrow-band noise around ``center`` Hz: an oscillation with natural waxing and waning."""
    freqs = scipy.fft.rfftfreq(n_samples, 1.0 / sfreq)
    gain = np.exp(-0.5 * ((freqs - center) / width) ** 2)
    return _shaped_noise(rng, n_sources, n_samples, gain)


def slow_envelope(rng: np.random.Generator, n_samples: int, sfreq: float, depth: float = 0.3) -> np.ndarray:
    """Positive (n_samples,) multiplier drifting over seconds, so band power is never constant."""
    freqs = scipy.fft.rfftfreq(n_samples, 1.0 / sfreq)
    gain = np.exp(-0.5 * (freqs / 0.15) ** 2)
    gain[0] = 0.0
    return np.exp(depth * _shaped_noise(rng, 1, n_samples, gain)[0]).astype(np.float32)


def smooth_steps(values: np.ndarray, sfreq: float, seconds: float) -> np.ndarray:
    """Soften a piecewise-constant gain so state changes (eyes, attention) ramp over ``seconds``."""
    size = max(1, int(round(seconds * sfreq)))
    return uniform_filter1d(values.astype(np.float32), size=size, mode="nearest")
