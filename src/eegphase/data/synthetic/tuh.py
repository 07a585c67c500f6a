"""Generate a TUH-EEG-shaped corpus: adult clinical EDF files in TUH's folder tree and header conventions.

Tree: ``edf/<group>/<id>/s<NNN>_<year>/<montage>/<id>_s<NNN>_t<NNN>.edf`` with 8-letter lowercase subject ids,
montage folders ``01_tcp_ar`` (labels ``EEG FP1-REF``) or ``02_tcp_le`` (labels ``EEG FP1-LE``).
The EDF header's patient field holds what TUH puts there: ``<id> <sex> <birthdate> <id> Age:<years>``
(birthdate anonymised to 1 January of the birth year), so a reader can recover sex and age from the header.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

import edfio
import numpy as np
from tqdm import tqdm

from .brain import synthesize
from .draft import TaskDraft, whole_seconds
from .formats import write_edf
from .ids import tuh_subject_ids
from .spatial import reference_positions
from .spectra import smooth_steps
from .staging import staged_output
from .traits import SubjectTraits, sample_traits

TUH_1020 = ("FP1", "FP2", "F7", "F3", "FZ", "F4", "F8", "T3", "C3", "CZ", "C4", "T4", "T5", "P3", "PZ", "P4")
TUH_1020 = (*TUH_1020, "T6", "O1", "O2")
TUH_EXTRAS = ("A1", "A2", "T1", "T2")
# Where TUH's names sit on the 10-05 system (T1/T2 are the anterior temporal sites near FT9/FT10).
_POSITION_NAMES = {"FP1": "Fp1", "FP2": "Fp2", "FZ": "Fz", "CZ": "Cz", "PZ": "Pz", "T1": "FT9", "T2": "FT10"}
MONTAGES = {"01_tcp_ar": "REF", "02_tcp_le": "LE"}
SAMPLING_RATES = (250.0, 256.0, 512.0)
SAMPLING_WEIGHTS = (0.75, 0.15, 0.10)


@dataclass(frozen=True)
class TuhFile:
    path: Path
    traits: SubjectTraits
    session_date: dt.date
    montage: str
    sfreq: float
    duration: float
    channels: tuple[str, ...]
    with_ekg: bool
    first_year: int
    seed: tuple[int, ...]

    @property
    def age(self) -> int:
        """Age at this session: the subject ages between sessions (traits.age is the age at the first)."""
        return int(self.traits.age) + self.session_date.year - self.first_year


def _positions(channels: tuple[str, ...]) -> np.ndarray:
    reference = reference_positions()
    return np.array([reference[_POSITION_NAMES.get(name, name.capitalize())] for name in channels])


def plan_files(n_subjects: int, seed: int, duration_scale: float) -> list[TuhFile]:
    """Subjects, their sessions and files (several per subject), all from ``seed``."""
    files = []
    for index, subject in enumerate(tuh_subject_ids(np.random.default_rng([seed, 11]), n_subjects)):
        rng = np.random.default_rng([seed, 12, index])
        traits = sample_traits(rng, subject, "tuh", index, age_range=(18.0, 90.0))
        first_year = int(rng.integers(2002, 2016))
        for session in range(1, int(rng.integers(1, 4)) + 1):
            date = dt.date(first_year + session - 1, int(rng.integers(1, 13)), int(rng.integers(1, 29)))
            montage = str(rng.choice(list(MONTAGES)))
            sfreq = float(rng.choice(SAMPLING_RATES, p=SAMPLING_WEIGHTS))
            n_extras = int(rng.integers(0, len(TUH_EXTRAS) + 1))
            channels = TUH_1020 + TUH_EXTRAS[:n_extras]
            with_ekg = bool(rng.random() < 0.4)
            for token in range(int(rng.integers(1, 3))):
                name = f"{subject}_s{session:03d}_t{token:03d}.edf"
                folder = (
                    Path("edf") / f"{index // 100:03d}" / subject / f"s{session:03d}_{date.year}" / montage
                )
                duration = whole_seconds(rng.uniform(60.0, 240.0) * duration_scale)
                files.append(
                    TuhFile(
                        folder / name,
                        traits,
                        date,
                        montage,
                        sfreq,
                        max(duration, 4.0),
                        channels,
                        with_ekg,
                        first_year,
                        (seed, 13, index, session, token),
                    )
                )
    return files


def _eyes_state_gain(rng: np.random.Generator, n_samples: int, sfreq: float) -> np.ndarray:
    """Clinical recordings alternate eyes closed (high alpha) and open, in blocks of 5-40 s."""
    gain = np.empty(n_samples, dtype=np.float32)
    position, closed = 0, True
    while position < n_samples:
        length = int(rng.uniform(5.0, 40.0) * sfreq)
        gain[position : position + length] = 2.2 if closed else 1.0
        position, closed = position + length, not closed
    return smooth_steps(gain, sfreq, 0.8)


def _ekg(rng: np.random.Generator, n_samples: int, sfreq: float) -> np.ndarray:
    """A crude ECG: an R-wave spike train at a resting heart rate, in microvolts."""
    signal = np.zeros(n_samples, dtype=np.float32)
    beat_s = 60.0 / rng.uniform(55.0, 90.0)
    t = np.arange(int(0.1 * sfreq)) / sfreq
    spike = 800.0 * np.exp(-0.5 * ((t - 0.05) / 0.01) ** 2)
    for onset in np.arange(rng.uniform(0, beat_s), n_samples / sfreq - 0.1, beat_s):
        start = int(onset * sfreq)
        signal[start : start + spike.size] += spike[: n_samples - start]
    return signal + rng.normal(0.0, 20.0, n_samples).astype(np.float32)


def write_file(root: Path, spec: TuhFile) -> None:
    rng = np.random.default_rng(list(spec.seed))
    draft = TaskDraft("", None, spec.sfreq, spec.duration)
    draft.alpha_gain = _eyes_state_gain(rng, draft.n_samples, spec.sfreq)
    band = (0.3, min(100.0, 0.45 * spec.sfreq))
    data = synthesize(spec.traits, draft, rng, _positions(spec.channels), band, line_freq=60.0)
    suffix = MONTAGES[spec.montage]
    labels = [f"EEG {name}-{suffix}" for name in spec.channels]
    if spec.with_ekg:
        data = np.concatenate([data, _ekg(rng, draft.n_samples, spec.sfreq)[None]])
        labels.append("EKG1-REF")
    traits, age = spec.traits, spec.age
    patient = edfio.Patient(
        code=traits.subject,
        sex=traits.sex,
        birthdate=dt.date(spec.session_date.year - age, 1, 1),
        name=traits.subject,
        additional=[f"Age:{age}"],
    )
    recording = edfio.Recording(
        startdate=spec.session_date,
        hospital_administration_code=spec.path.stem,
        investigator_technician_code="X",
        equipment_code="X",
    )
    path = root / spec.path
    path.parent.mkdir(parents=True, exist_ok=True)
    write_edf(path, data, spec.sfreq, labels, patient, recording)


def generate_tuh(
    out: Path | str,
    n_subjects: int = 10,
    seed: int = 0,
    duration_scale: float = 1.0,
    overwrite: bool = False,
    progress: bool = True,
) -> Path:
    """Write a synthetic TUH-style EDF corpus to ``out`` and return it."""
    if n_subjects < 1 or duration_scale <= 0:
        raise ValueError(
            f"n_subjects and duration_scale must be positive (got {n_subjects}, {duration_scale})"
        )
    files = plan_files(n_subjects, int(seed), float(duration_scale))
    record = {
        "mode": "tuh",
        "n_subjects": n_subjects,
        "seed": int(seed),
        "duration_scale": float(duration_scale),
    }
    with staged_output(Path(out), record, overwrite) as stage:
        for spec in tqdm(files, unit="file", desc="synthetic TUH", disable=not progress):
            write_file(stage, spec)
    return Path(out)
