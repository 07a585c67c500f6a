"""contrastChangeDetection: trials whose response time follows a subject speed and a slow attention drift.

EEG precursors of the response time (each weak and noisy): posterior alpha before the target grows with the
drift (inattention), a parietal stimulus-locked wave peaks later when the response is slower, and a
contralateral motor potential ramps up before the button press.
"""

from __future__ import annotations

import numpy as np

from .draft import TaskDraft, add_waveform, whole_seconds
from .spectra import smooth_steps
from .traits import SubjectTraits

TRIALS_PER_RUN = 22
# The real files' codes for these markers are not documented; these are fixed synthetic ones.
EVENT_CODES = {
    "contrastTrial_start": 5,
    "left_target": 8,
    "right_target": 9,
    "left_buttonPress": 12,
    "right_buttonPress": 13,
    "end_experiment": 99,
}
MAX_RT_S = 2.9
# Trial-wise oscillatory correlates of the response (amplitude multipliers of the sources).
ALPHA_STATE = 0.35  # log alpha amplitude per unit of the attention drift (inattention raises alpha)
ALPHA_ERD = 0.75  # posterior alpha while the target is processed, until just after the response
BETA_ERD = 0.6  # central beta while the response is prepared (event-related desynchronisation)
BETA_REBOUND = 1.6  # post-movement beta rebound, 0.5 s after the press ...
BETA_REBOUND_S = 0.8  # ... for this long


def attention_drift(rng: np.random.Generator, n_trials: int, persistence: float = 0.9) -> np.ndarray:
    """Unit-variance AR(1) series over a subject's trials (all runs): the slow attention state."""
    innovations = rng.standard_normal(n_trials) * np.sqrt(1.0 - persistence**2)
    drift = np.empty(n_trials)
    state = rng.standard_normal()
    for k in range(n_trials):
        state = persistence * state + innovations[k]
        drift[k] = state
    return drift


def _gaussian(sfreq: float, center: float, width: float, span: float) -> np.ndarray:
    t = np.arange(int(span * sfreq), dtype=np.float32) / sfreq
    return np.exp(-0.5 * ((t - center) / width) ** 2).astype(np.float32)


def _motor_potential(sfreq: float, amplitude: float) -> np.ndarray:
    """Negative ramp over 0.6 s ending at the press, then a fast return (starts 0.6 s before the press)."""
    ramp = np.linspace(0.0, 1.0, int(0.6 * sfreq), dtype=np.float32) ** 2
    recovery = np.exp(-np.arange(int(0.3 * sfreq), dtype=np.float32) / (0.06 * sfreq))
    return -amplitude * np.concatenate([ramp, recovery])


def ccd_run(
    traits: SubjectTraits, rng: np.random.Generator, sfreq: float, run: int, drift: np.ndarray
) -> TaskDraft:
    """One run (block B<run>) with one trial per value of ``drift``."""
    t = rng.uniform(2.0, 4.0)
    block_start = t
    t += rng.uniform(1.5, 3.0)
    trials = []
    for state in drift:
        start = t
        target = start + rng.uniform(1.8, 3.2)
        side = str(rng.choice(["left", "right"]))
        rt = float(
            np.clip(traits.rt_scale * np.exp(0.2 * state + 0.15 * rng.standard_normal()), 0.3, MAX_RT_S)
        )
        pressed = rng.random() > 0.03 + 0.1 * (state > 1.0)
        correct = rng.random() < 0.92 - 0.05 * max(state, 0.0)
        early_press = rng.random() < 0.03
        t = target + (rt if pressed else MAX_RT_S) + rng.uniform(0.8, 1.4)
        trials.append((start, target, side, rt, pressed, correct, early_press, state, t))
    end = t + rng.uniform(0.3, 0.8)
    draft = TaskDraft("contrastChangeDetection", run, sfreq, whole_seconds(end + rng.uniform(1.0, 2.0)))
    draft.extra_columns = ("feedback",)
    draft.add_event(block_start, f"contrastChangeB{run}_start", 10 + run, feedback="n/a")
    gain = np.ones(draft.n_samples, dtype=np.float32)
    beta_gain = np.ones(draft.n_samples, dtype=np.float32)
    visual, parietal = draft.source("visual"), draft.source("parietal")
    for start, target, side, rt, pressed, correct, early_press, state, trial_end in trials:
        draft.add_event(start, "contrastTrial_start", EVENT_CODES["contrastTrial_start"], feedback="n/a")
        if early_press:
            early_side = str(rng.choice(["left", "right"]))
            value = f"{early_side}_buttonPress"
            draft.add_event(start + 0.5 * (target - start), value, EVENT_CODES[value], feedback="non_target")
        draft.add_event(target, f"{side}_target", EVENT_CODES[f"{side}_target"], feedback="n/a")
        # Tonic posterior alpha follows the attention state over the whole trial (before and after the
        # target); processing the target desynchronises it until shortly after the response.
        gain[int(start * sfreq) : int(trial_end * sfreq)] = np.exp(
            ALPHA_STATE * state + 0.15 * rng.standard_normal()
        )
        response = target + (rt if pressed else MAX_RT_S)
        gain[int((target + 0.2) * sfreq) : int((response + 0.3) * sfreq)] *= ALPHA_ERD
        # Central beta: desynchronised while the response is prepared, rebounding after the press.
        depth = np.exp(0.15 * rng.standard_normal())
        beta_gain[int((target + 0.2) * sfreq) : int((response + 0.2) * sfreq)] = BETA_ERD**depth
        if pressed:
            rebound = slice(int((response + 0.5) * sfreq), int((response + 0.5 + BETA_REBOUND_S) * sfreq))
            beta_gain[rebound] = BETA_REBOUND**depth
        vep = 3.0 * (_gaussian(sfreq, 0.10, 0.02, 0.4) - 0.8 * _gaussian(sfreq, 0.17, 0.03, 0.4))
        add_waveform(visual, sfreq, target, vep)
        latency = 0.25 + 0.3 * rt + 0.05 * rng.standard_normal()
        p3 = (
            (5.0 if pressed else 2.0)
            * np.exp(-0.2 * state + 0.2 * rng.standard_normal())
            * _gaussian(sfreq, latency, 0.15, 2.0)
        )
        add_waveform(parietal, sfreq, target, p3)
        if pressed:
            press_side = side if correct else ("right" if side == "left" else "left")
            value = f"{press_side}_buttonPress"
            feedback = "smiley_face" if correct else "sad_face"
            draft.add_event(target + rt, value, EVENT_CODES[value], feedback=feedback)
            contralateral = "motor_right" if press_side == "left" else "motor_left"
            amplitude = 4.0 * np.exp(0.2 * rng.standard_normal())
            add_waveform(
                draft.source(contralateral), sfreq, target + rt - 0.6, _motor_potential(sfreq, amplitude)
            )
    draft.add_event(end, "end_experiment", EVENT_CODES["end_experiment"], feedback="n/a")
    draft.alpha_gain = smooth_steps(gain, sfreq, 0.4)
    draft.beta_gain = smooth_steps(beta_gain, sfreq, 0.3)
    return draft
