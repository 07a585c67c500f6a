"""TUH-style EDF output, determinism from the seed, and the Hydra entry point."""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
from pathlib import Path

import mne
import pytest

from eegphase.data.synthetic import generate_hbn, generate_tuh
from eegphase.data.synthetic.staging import staged_output

ROOT = Path(__file__).resolve().parents[2]
TUH_PATH = re.compile(r"edf/\d{3}/([a-z]{8})/s(\d{3})_(\d{4})/(01_tcp_ar|02_tcp_le)/\1_s\2_t\d{3}\.edf")
TUH_LABEL = re.compile(r"EEG [A-Z0-9]+-(REF|LE)|EKG1-REF")


def _hashes(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def test_tuh_files_follow_tuh_layout_and_header(tuh_edf: Path) -> None:
    files = sorted(tuh_edf.rglob("*.edf"))
    assert len({path.parts[-4] for path in files}) == 4
    assert len(files) > 4  # several sessions / files per subject
    for path in files:
        relative = path.relative_to(tuh_edf).as_posix()
        match = TUH_PATH.fullmatch(relative)
        assert match, relative
        raw = mne.io.read_raw_edf(path, verbose="error")
        assert raw.info["sfreq"] in (250.0, 256.0, 512.0)
        assert all(TUH_LABEL.fullmatch(name) for name in raw.ch_names), raw.ch_names
        eeg = [name for name in raw.ch_names if name.startswith("EEG ")]
        assert 19 <= len(eeg) <= 23
        assert {name.rsplit("-", 1)[1] for name in eeg} == {"REF" if "01_tcp_ar" in relative else "LE"}
        assert raw.n_times / raw.info["sfreq"] >= 4.0
        patient = path.read_bytes()[8:88].decode("ascii").split()
        assert patient[0] == match.group(1) and patient[1] in ("M", "F")
        age = int(patient[4].removeprefix("Age:"))
        assert 18 <= age <= 95
        birth_year = raw.info["subject_info"]["birthday"].year
        assert int(match.group(3)) - birth_year == age  # session year - birth year = age in the header


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    settings = dict(releases=["R1"], subjects_per_release=1, duration_scale=0.03, ccd_trials_per_run=2)
    first = _hashes(generate_hbn(tmp_path / "a", fmt="set", seed=5, progress=False, **settings))
    second = _hashes(generate_hbn(tmp_path / "b", fmt="set", seed=5, progress=False, **settings))
    other = _hashes(generate_hbn(tmp_path / "c", fmt="set", seed=6, progress=False, **settings))
    assert any(name.endswith(".set") for name in first) and any(name.endswith(".fdt") for name in first)
    assert first == second
    assert first != other
    tuh_a = _hashes(generate_tuh(tmp_path / "ta", n_subjects=1, seed=2, duration_scale=0.03, progress=False))
    tuh_b = _hashes(generate_tuh(tmp_path / "tb", n_subjects=1, seed=2, duration_scale=0.03, progress=False))
    assert tuh_a == tuh_b


def test_interrupted_generation_leaves_nothing_that_looks_complete(tmp_path: Path) -> None:
    out = tmp_path / "dataset"
    with pytest.raises(RuntimeError, match="stop"), staged_output(out, {"mode": "test"}) as stage:
        (stage / "participants.tsv").write_text("participant_id\n")
        raise RuntimeError("stop")
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_existing_output_is_not_overwritten_silently(tmp_path: Path) -> None:
    out = tmp_path / "dataset"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="dataset"):
        generate_tuh(out, n_subjects=1, duration_scale=0.03, progress=False)
    assert (out / "keep.txt").read_text() == "mine"


def test_command_line_writes_dataset_and_no_hydra_outputs(tmp_path: Path) -> None:
    out = tmp_path / "tuh"
    command = [sys.executable, "-m", "eegphase.synth", f"out={out}", "mode=tuh", "n_subjects=1"]
    command += ["duration_scale=0.03", "progress=false"]
    result = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (out / ".complete").is_file()
    assert sorted(path.name for path in tmp_path.iterdir()) == ["tuh"]  # no outputs/, .hydra/ or logs
    assert list(out.rglob("*.edf"))
