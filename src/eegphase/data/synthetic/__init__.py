"""Realistic synthetic HBN-EEG (BIDS) and TUH-style (EDF) datasets, to run the pipeline without real data.

Files are in the real formats and layouts, so real-data readers read them unchanged: HBN as EEGLAB .set +
.fdt at 500 Hz or BDF at 100 Hz (the challenge copies), 129 channels E1..E128 + Cz (GSN-HydroCel-129
positions, referenced to Cz, which therefore reads zero); TUH as EDF (see ``tuh``).

Planted structure (every effect weak and noisy, never a clean oracle):

- Subjects: age 5-21, sex, correlated p_factor / attention / internalizing / externalizing (a general
  factor), some ``n/a`` (whole phenotype or one factor), ehq_total, commercial_use, full_pheno.
- Space: 28 background sources plus named ones (posterior alpha, frontal theta, central beta, visual,
  parietal, motor, movie) sit at scalp anchors; Gaussian topographies (3.5 cm) from the electrode positions
  mix them, so neighbouring channels correlate. Anchors move a few mm per subject: topographies are similar,
  not equal.
- Spectrum: 1/f^chi background (chi falls with age), alpha peak frequency rising with age (~8 Hz at 5,
  ~10 Hz at 21; individual spread 0.55 Hz) and 0.2 Hz slower per SD of externalizing; frontal theta raised
  (x e^0.3 per SD) and central beta lowered (x e^-0.25 per SD) by externalizing, each with its own subject
  noise (theta/beta ratio): the challenge 2 signal, readable from any window's band power.
- RestingState: resting_start (90), then 5x instructed_toOpenEyes (20) ~20 s / instructed_toCloseEyes (30)
  ~40 s (x duration_scale); alpha ~2.6x stronger with eyes closed.
- Movies (DespicableMe, DiaryOfAWimpyKid, FunwithFractals, ThePresent): video_start / video_stop with the
  real codes; seven movie-driven sources are a deterministic function of (movie, time since video_start),
  shared by every subject, so inter-subject correlation exists at equal movie timestamps; their amplitude
  (engagement) falls with the attention factor.
- contrastChangeDetection runs 1-3: contrastChangeB<run>_start, contrastTrial_start, left/right_target,
  left/right_buttonPress (feedback smiley_face / sad_face / non_target, else n/a), end_experiment. Response
  time = subject speed (age, attention) x a slow AR(1) attention drift x trial noise. EEG correlates, all
  inside or around the challenge 1 window (stimulus + 0.5 .. 2.5 s): posterior alpha over the whole trial
  grows with the drift and desynchronises from the target to just after the press; central beta
  desynchronises while the response is prepared and rebounds 0.5-1.3 s after the press (so a window's beta
  power falls with RT); a parietal P300-like wave peaks 0.25 + 0.3 x RT s after the target, smaller when
  inattentive; a contralateral motor potential ramps over 0.6 s before the press. Some trials have no press
  (more when inattentive), some a press before the target (non_target), some a press on the wrong side.
- Decodability: on the default dataset (conf/synth.yaml) a band-power ridge
  (``eegphase.objectives.reference``) reaches test NRMSE ~0.84 (C1) and ~0.70 (C2); the mean scores ~1.0.
- Quirks of the real releases: junk markers (boundary, 9999, break cnt), ~10% of recordings end before their
  last event, ~8% of recordings missing (participants.tsv says ``unavailable``), one 6-channel recording in
  the last release when it has at least 10 subjects; tasks not simulated (surroundSupp, seqLearning,
  symbolSearch) are ``unavailable``. The start kit's 9 excluded subject ids are never issued.

Everything is deterministic from the seed (same seed, byte-identical files, whatever the process pool, thread
counts or hash seed: sources are mixed without BLAS, see ``brain.mix_sources``).
"""

from .hbn import generate_hbn
from .tuh import generate_tuh

__all__ = ["generate_hbn", "generate_tuh"]
