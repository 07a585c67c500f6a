"""Run the real CLI (``python -m eegphase.run``, or under torchrun) in a scratch folder, as a user runs it.

Every test run is shrunk by the config's own ``debug=smoke`` (conf/debug/smoke.yaml), and kept quiet.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from eegphase.config import CONF_DIR

TINY = ["debug=smoke", "progress=false", "hydra/job_logging=disabled"]


def torchrun(nproc: int) -> list[str]:
    """``torchrun --standalone --nproc_per_node=<nproc>`` of this interpreter's environment."""
    exe = Path(sys.executable).with_name("torchrun")
    return [str(exe) if exe.exists() else "torchrun", "--standalone", f"--nproc_per_node={nproc}"]


def run_cli(workdir: Path, *overrides: str, data_root: Path, cache_dir: Path | None = None,
            generate: bool = False, multirun: bool = False, nproc: int | None = None, check: bool = True,
            env: dict[str, str] | None = None, timeout: int = 600) -> subprocess.CompletedProcess:  # fmt: skip
    """``python -m eegphase.run`` (``nproc``: under ``torchrun --nproc_per_node``) with ``TINY``, the data at
    ``data_root`` (``generate``: generated there first if absent) and ``cache_dir`` (else the smoke cache), in
    ``workdir`` (its own mlflow.db); ``check``: fail with the output's tail on a non-zero exit."""
    launcher = [sys.executable] if nproc is None else torchrun(nproc)
    cmd = [*launcher, "-m", "eegphase.run", *(["-m"] if multirun else []), *TINY, f"data.root={data_root}",
           *([] if generate else ["~data.generate"]), *([f"cache_dir={cache_dir}"] if cache_dir else []),
           *overrides]  # fmt: skip
    full_env = {**os.environ, "PYTHONUNBUFFERED": "1", "EEGPHASE_CONF_DIR": str(CONF_DIR), **(env or {})}
    if nproc is not None:
        full_env["OMP_NUM_THREADS"] = "1"  # one thread per rank on a small machine
    proc = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True, timeout=timeout, env=full_env)
    if check and proc.returncode != 0:
        output = f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
        raise AssertionError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{output}")
    return proc
