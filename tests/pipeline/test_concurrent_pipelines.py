"""Two pipelines on one store and one work folder at once: a live run is never taken for a stale one."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cli_helpers import TINY

from .conftest import ROOT, runs

WAITING = "another process is training fingerprint"


def _phase_status(db: Path, phase: str) -> list[str]:
    if not db.exists():
        return []
    connection = sqlite3.connect(db, timeout=30)
    try:
        rows = connection.execute(
            "SELECT r.status FROM runs r JOIN tags t ON r.run_uuid = t.run_uuid "
            "WHERE t.key = 'eegphase.phase' AND t.value = ?",
            (phase,),
        ).fetchall()
    except sqlite3.OperationalError:  # the store's tables are still being created
        return []
    finally:
        connection.close()
    return [status for (status,) in rows]


def _store_is_idle(db: Path) -> bool:
    """No process holds any lock on the SQLite file (not even a read): it is safe to freeze its writers."""
    connection = sqlite3.connect(db, timeout=0, isolation_level=None)
    try:
        connection.execute("BEGIN EXCLUSIVE")
        connection.execute("ROLLBACK")
        return True
    except sqlite3.OperationalError:
        return False
    finally:
        connection.close()


def _start(workdir: Path, seed: int, data_root: Path, log: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "eegphase.run", *TINY, "hydra/job_logging=default", f"data.root={data_root}",
           "~data.generate", "+pipeline=no_contrastive", f"seed={seed}"]  # fmt: skip
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "EEGPHASE_CONF_DIR": str(ROOT / "conf")}
    with open(log, "w") as out:
        return subprocess.Popen(cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.mark.slow  # minutes of end-to-end work: make test-slow (CI runs it)
def test_a_second_pipeline_waits_for_the_live_phase_it_shares_and_reuses_it(tiny_hbn, tmp_path):
    # Seeds 0 and 1 share the pretrain phase (same fingerprint). A is frozen (SIGSTOP) in the middle of it,
    # its process alive, while B reaches that phase: B must not mark A's runs KILLED and train over A's work
    # folder; it waits for A's lease, then reuses A's run.
    db = tmp_path / "mlflow.db"
    log_a, log_b = tmp_path / "a.log", tmp_path / "b.log"
    a = _start(tmp_path, 0, tiny_hbn, log_a)
    b = None
    try:
        deadline = time.monotonic() + 400
        while "RUNNING" not in _phase_status(db, "pretrain"):
            assert a.poll() is None and time.monotonic() < deadline, log_a.read_text()[-3000:]
            time.sleep(0.2)
        while True:  # freeze A between two writes, never while it holds the database
            os.kill(a.pid, signal.SIGSTOP)
            if _store_is_idle(db):
                break
            os.kill(a.pid, signal.SIGCONT)
            time.sleep(0.05)
        b = _start(tmp_path, 1, tiny_hbn, log_b)
        while WAITING not in log_b.read_text() and b.poll() is None:
            assert time.monotonic() < deadline, log_b.read_text()[-3000:]
            time.sleep(0.2)
        os.kill(a.pid, signal.SIGCONT)
        assert a.wait(timeout=400) == 0, log_a.read_text()[-3000:]
        assert b.wait(timeout=400) == 0, log_b.read_text()[-3000:]
    finally:
        for proc in (a, b):
            if proc is not None and proc.poll() is None:
                os.kill(proc.pid, signal.SIGCONT)
                proc.kill()
                proc.wait()

    assert WAITING in log_b.read_text()
    frame = runs(tmp_path)
    assert (frame["status"] == "FINISHED").all(), frame[["tags.eegphase.phase", "status"]]
    assert "tags.eegphase.resumed_from" not in frame or frame["tags.eegphase.resumed_from"].isna().all()
    pretrain = frame[frame["tags.eegphase.phase"] == "pretrain"]
    trained = pretrain[pretrain["tags.eegphase.reused"] == "false"]
    reused = pretrain[pretrain["tags.eegphase.reused"] == "true"]
    assert len(trained) == 1 and len(reused) == 1  # A trained it, B reused A's run
    assert reused.iloc[0]["tags.eegphase.reused_run"] == trained.iloc[0]["run_id"]
    parents = frame[frame["tags.eegphase.phase"] == "pipeline"]
    assert sorted(parents["params.seed"]) == ["0", "1"]
