"""The same seed gives the same bytes in any process arrangement (issue 10: launcher vs plain run)."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import sys
if sys.argv[3] == "torch":
    import torch  # noqa: F401  (a pipeline process has torch and its thread pools loaded first)
from eegphase.data.synthetic import generate_hbn
generate_hbn(sys.argv[1], releases=["R1", "R2"], subjects_per_release=2, fmt="bdf", duration_scale=0.03,
             ccd_trials_per_run=3, seed=4, n_jobs=int(sys.argv[2]), progress=False)
"""


def _generate(out: Path, n_jobs: int, threads: str, hash_seed: str, preload: str) -> dict[str, str]:
    env = dict(os.environ, PYTHONHASHSEED=hash_seed)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = threads
    subprocess.run([sys.executable, "-c", SCRIPT, str(out), str(n_jobs), preload], env=env, check=True)
    return {
        str(path.relative_to(out)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(out.rglob("*"))
        if path.is_file()
    }


def test_same_seed_same_bytes_across_processes_threads_and_hash_seeds(tmp_path: Path) -> None:
    plain = _generate(tmp_path / "plain", n_jobs=1, threads="1", hash_seed="1", preload="none")
    pooled = _generate(tmp_path / "pooled", n_jobs=2, threads="4", hash_seed="2", preload="torch")
    assert sum(name.endswith(".bdf") for name in plain) >= 10
    differing = sorted(name for name in plain if plain[name] != pooled.get(name))
    assert not differing and plain.keys() == pooled.keys(), differing[:10]
