"""Open one EEG file lazily with MNE, turning every way it can fail into a ``RecordingError``.

MNE reads a truncated EDF silently (it infers a shorter length from the file size) and only notices a
short ``.fdt`` when the data are read, so the size checks here run first, on the headers alone.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import mne

from eegphase.data.readers.channels import is_non_eeg_label
from eegphase.data.recording import RecordingError

SUPPORTED_SUFFIXES = (".edf", ".bdf", ".set", ".vhdr", ".fif")
_EDF_BYTES_PER_SAMPLE = {".edf": 2, ".bdf": 3}


def _ascii_field(header: bytes, start: int, width: int) -> str:
    return header[start : start + width].decode("latin-1").strip()


def edf_patient_field(path: Path) -> str:
    """The raw 80-character patient field of an EDF/BDF header (TUH writes 'Age:NN' there)."""
    with open(path, "rb") as handle:
        return _ascii_field(handle.read(88), 8, 80)


def check_edf_size(path: Path) -> None:
    """Raise ``RecordingError`` when an EDF/BDF file is shorter than its header says (truncated copy)."""
    size = path.stat().st_size
    with open(path, "rb") as handle:
        fixed = handle.read(256)
        if len(fixed) < 256:
            raise RecordingError(path, f"truncated: {size} bytes, shorter than the 256-byte EDF header")
        try:
            header_bytes = int(_ascii_field(fixed, 184, 8))
            n_records = int(_ascii_field(fixed, 236, 8))
            n_signals = int(_ascii_field(fixed, 252, 4))
        except ValueError as err:
            raise RecordingError(path, f"corrupt EDF header ({err})") from err
        signal_header = handle.read(n_signals * 256)
    if len(signal_header) < n_signals * 256 or size < header_bytes:
        raise RecordingError(path, f"truncated: {size} bytes, shorter than its own header ({header_bytes})")
    # per signal: label 16, transducer 80, 5 x 8 ranges/units, prefilter 80, then samples per record 8
    samples_field = signal_header[n_signals * 216 : n_signals * 224]
    try:
        samples_per_record = [int(_ascii_field(samples_field, 8 * i, 8)) for i in range(n_signals)]
    except ValueError as err:
        raise RecordingError(path, f"corrupt EDF signal header ({err})") from err
    if n_records < 0:  # -1: "unknown", written by recorders that were not stopped; nothing to check
        return
    record_bytes = sum(samples_per_record) * _EDF_BYTES_PER_SAMPLE[path.suffix.lower()]
    expected = header_bytes + n_records * record_bytes
    if size < expected:
        complete = (size - header_bytes) // record_bytes if record_bytes else 0
        raise RecordingError(
            path,
            f"truncated: header promises {n_records} data records ({expected} bytes) "
            f"but the file has {size} bytes ({complete} complete records)",
        )


def _set_data_file(path: Path) -> tuple[Path | None, int | None]:
    """The .fdt a .set points to and its expected size in bytes; (None, None) when data are inside.

    EEGLAB saves the fields inside an ``EEG`` struct; eeglabio saves them at the top level.
    """
    from scipy.io import loadmat

    names = ["EEG", "data", "nbchan", "pnts", "trials"]
    try:
        mat = loadmat(path, squeeze_me=True, struct_as_record=False, variable_names=names, appendmat=False)
    except NotImplementedError:  # MATLAB v7.3 (HDF5): let MNE handle it
        return None, None
    except Exception as err:  # scipy raises ValueError/TypeError/... on garbage; all mean "corrupt"
        raise RecordingError(path, f"corrupt EEGLAB .set file ({type(err).__name__}: {err})") from err
    fields = {name: getattr(mat["EEG"], name, None) for name in names[1:]} if "EEG" in mat else mat
    data = fields.get("data")
    if not isinstance(data, str):
        return None, None
    try:
        trials = int(fields.get("trials") or 1)
        expected = int(fields["nbchan"]) * int(fields["pnts"]) * trials * 4  # float32 samples
    except (KeyError, TypeError, ValueError):
        expected = None
    return path.parent / Path(data).name, expected


def check_set_data_file(path: Path) -> None:
    """Raise ``RecordingError`` naming the missing or short ``.fdt`` of an EEGLAB ``.set``."""
    fdt, expected = _set_data_file(path)
    if fdt is None:
        return
    if not fdt.exists():
        alternative = path.with_suffix(".fdt")  # MNE also tries the .set's own stem
        if not alternative.exists():
            raise RecordingError(path, f"its data file {fdt.name} is missing (looked for {fdt})")
        fdt = alternative
    if expected is not None and fdt.stat().st_size < expected:
        raise RecordingError(
            path, f"truncated data file {fdt.name}: {fdt.stat().st_size} bytes, expected {expected}"
        )


def read_raw_lazy(path: Path) -> mne.io.BaseRaw:
    """Open ``path`` without loading its data; raise ``RecordingError`` naming the file on any failure."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUPPORTED_SUFFIXES:
        raise RecordingError(path, f"unsupported file type {suffix!r} (supported: {SUPPORTED_SUFFIXES})")
    if not path.is_file():
        raise RecordingError(path, "file not found")
    if suffix in _EDF_BYTES_PER_SAMPLE:
        check_edf_size(path)
    elif suffix == ".set":
        check_set_data_file(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            raw = mne.io.read_raw(path, preload=False, verbose="error")
    except RecordingError:
        raise
    except Exception as err:  # MNE raises ValueError, OSError, KeyError, ... for unreadable files
        raise RecordingError(path, f"cannot be read by MNE ({type(err).__name__}: {err})") from err
    if raw.n_times == 0:
        raise RecordingError(path, "holds no samples")
    return raw


def pick_eeg_channels(raw: mne.io.BaseRaw, path: Path, drop_non_eeg_labels: bool = True) -> list[str]:
    """Keep EEG-typed channels only (and drop EEG-typed channels labelled ECG/EOG/...); return dropped names.

    EDF readers type every channel 'eeg', so the label check is what removes an EKG lead from TUH files.
    """
    types = raw.get_channel_types()
    keep = [
        name
        for name, kind in zip(raw.ch_names, types, strict=True)
        if kind == "eeg" and not (drop_non_eeg_labels and is_non_eeg_label(name))
    ]
    if not keep:
        raise RecordingError(path, f"no EEG channels among {len(raw.ch_names)} channels {raw.ch_names[:8]}")
    dropped = [name for name in raw.ch_names if name not in keep]
    if dropped:
        raw.pick(keep)
    return dropped


def duration_s(raw: mne.io.BaseRaw) -> float:
    """Length of the data in seconds (n_times / sfreq), the limit past which events are dropped."""
    return raw.n_times / raw.info["sfreq"]


__all__ = [
    "SUPPORTED_SUFFIXES",
    "check_edf_size",
    "check_set_data_file",
    "duration_s",
    "edf_patient_field",
    "pick_eeg_channels",
    "read_raw_lazy",
]
