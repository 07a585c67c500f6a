"""A folder that cannot be written stops a run at start-up, naming the path and its config key; a failing
write in the cache (a full disk) names the file it was writing."""

from __future__ import annotations

import errno
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _under_a_file(tmp_path: Path) -> Path:
    """A folder no one can create, root included (tests run as root, where chmod 0o555 stops nothing): its
    parent is a plain file."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder was expected\n")
    return blocker / "cache"


def test_require_writable_names_key_and_path(tmp_path):
    from eegphase.paths import require_writable

    bad = _under_a_file(tmp_path)
    with pytest.raises(OSError, match=rf"cache_dir={bad}") as err:
        require_writable(bad, "cache_dir")
    assert err.value.errno == errno.ENOTDIR
    as_file = tmp_path / "not-a-folder"
    with pytest.raises(OSError, match=rf"work_dir={as_file}"):
        require_writable(as_file, "work_dir")
    good = tmp_path / "fresh" / "cache"
    assert require_writable(good, "cache_dir") == good and not good.exists()  # checked, not created
    good.mkdir(parents=True)
    assert require_writable(good, "cache_dir") == good and not any(good.iterdir())  # no probe left
    if os.geteuid() != 0:  # a read-only folder stops only a user that is not root
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        with pytest.raises(OSError, match=rf"cache_dir={locked}"):
            require_writable(locked, "cache_dir")


def _error_names(stderr: str, key: str, path: Path) -> bool:
    """Whether the error itself (not Hydra's echo of the overrides) names ``key=path``."""
    return re.search(rf"Error: .*{key}={re.escape(str(path))}", stderr) is not None


def _cli(module: str, cwd: Path, *overrides: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "EEGPHASE_CONF_DIR": str(ROOT / "conf")}
    return subprocess.run([sys.executable, "-m", module, *overrides], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)  # fmt: skip


def test_prepare_with_an_unwritable_cache_dir_fails_before_any_work(tiny_hbn, tmp_path):
    bad = _under_a_file(tmp_path)
    proc = _cli("eegphase.prepare", tmp_path, f"data.root={tiny_hbn}", f"cache_dir={bad}", "n_jobs=1",
                "progress=false")  # fmt: skip
    assert proc.returncode != 0
    assert _error_names(proc.stderr, "cache_dir", bad), proc.stderr[-3000:]
    # it stopped at start-up: no recording was read or preprocessed
    assert "_process_one" not in proc.stderr and "preprocess(" not in proc.stderr, proc.stderr[-3000:]


@pytest.mark.parametrize("key", ["cache_dir", "work_dir"])
def test_run_with_an_unwritable_folder_fails_before_any_run(tiny_hbn, tmp_path, key):
    bad = _under_a_file(tmp_path)
    proc = _cli("eegphase.run", tmp_path, "+pipeline=baseline", "debug=smoke", "progress=false",
                "hydra/job_logging=disabled", f"data.root={tiny_hbn}", "~data.generate", f"{key}={bad}")  # fmt: skip
    assert proc.returncode != 0
    assert _error_names(proc.stderr, key, bad), proc.stderr[-3000:]
    assert not (tmp_path / "mlflow.db").exists()  # nothing tracked: it stopped before the first run
    # nor cache nor phase folders (outputs/ itself is Hydra's run folder)
    assert not (tmp_path / "cache-smoke").exists() and not (tmp_path / "outputs" / "smoke-phases").exists()


def test_a_full_disk_during_a_cache_write_names_the_file():
    from eegphase.data.cache import write_file

    # /dev/full answers every write with ENOSPC: a real full disk, no mock
    with pytest.raises(OSError, match="/dev/full") as err:
        write_file(Path("/dev/full"), b"\0" * (1 << 16))
    assert err.value.errno == errno.ENOSPC
