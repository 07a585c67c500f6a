"""SIGKILL in the middle of challenge 2 (random 2 s crops): the rerun resumes there, says so in its log, keeps
the killed run's metric history (each step once) and plots, and ends with the scores of an uninterrupted run."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import mlflow
import pytest
import torch

from cli_helpers import TINY, run_cli

from .conftest import ROOT, runs

LONGER = [
    "phases.finetune.epochs=4",
    "phases.finetune.max_batches_per_epoch=6",
    "+pipeline=baseline",  # fine-tuning only: challenge 1, then challenge 2 with random crops (crop_s)
]


def _finetune(frame):
    return frame[(frame["tags.eegphase.phase"] == "finetune") & (frame["status"] == "FINISHED")].iloc[0]


def _parent(frame):
    return frame[(frame["tags.eegphase.phase"] == "pipeline") & (frame["status"] == "FINISHED")].iloc[0]


@pytest.mark.slow  # minutes of end-to-end work: make test-slow (CI runs it)
def test_killed_during_challenge2_resumes_exactly(tiny_hbn, tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "EEGPHASE_CONF_DIR": str(ROOT / "conf")}
    cmd = [sys.executable, "-m", "eegphase.run", *TINY, f"data.root={tiny_hbn}", "~data.generate", *LONGER]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 900  # a generous bound for a busy machine, not a speed check
    target = None
    while time.time() < deadline and proc.poll() is None:
        found = list((tmp_path / "outputs").glob("smoke-phases/finetune-*/challenge2/last.pt"))
        if found:
            target = found[0]
            break
        time.sleep(0.02)
    assert proc.poll() is None and target is not None, proc.stderr.read().decode()[-3000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed_epoch = torch.load(target, map_location="cpu", weights_only=True)["epoch"]
    assert 1 <= killed_epoch < 4
    client = mlflow.tracking.MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    killed = runs(tmp_path)
    killed_run = killed[killed["tags.eegphase.phase"] == "finetune"].iloc[0]["run_id"]
    before = {  # what the killed run holds: every metric's history, and its artifacts
        key: {(m.step, m.value) for m in client.get_metric_history(killed_run, key)}
        for key in client.get_run(killed_run).data.metrics
    }
    assert "challenge1/epoch" in before and any(key.startswith("challenge2/") for key in before)
    plots = {a.path for a in client.list_artifacts(killed_run, "plots")}
    assert "plots/challenge1_curves.png" in plots

    # the rerun with the default job logging, so that what it says reaches stdout
    logged = [o for o in TINY if not o.startswith("hydra/job_logging")]
    rerun = subprocess.run(
        [sys.executable, "-m", "eegphase.run", *logged, f"data.root={tiny_hbn}", "~data.generate", *LONGER],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert rerun.returncode == 0, rerun.stderr[-5000:]
    frame = runs(tmp_path)
    assert not (frame["status"] == "RUNNING").any()
    parent, finetune = _parent(frame), _finetune(frame)

    clean = tmp_path / "clean"
    clean.mkdir()
    run_cli(clean, *LONGER, data_root=tiny_hbn)
    reference = _parent(runs(clean))

    problems = []
    # One machine, one thread count, the same code: a resumed run repeats the uninterrupted one's float32
    # operations in the same order, so the scores agree to the last bit; rel=1e-6 only absorbs the metric's
    # float round trip through MLflow. Crops drawn differently after the resume moved test_nrmse_c2 by 1.3%
    # (measured before the fix: 1.3869 resumed vs 1.4047 uninterrupted), far outside it.
    for metric in ("test_nrmse_c1", "test_nrmse_c2"):
        if parent[f"metrics.{metric}"] != pytest.approx(reference[f"metrics.{metric}"], rel=1e-6):
            problems.append(
                f"{metric}: resumed {parent[f'metrics.{metric}']} vs {reference[f'metrics.{metric}']}"
            )
    out = rerun.stdout + rerun.stderr
    if not any(
        "resum" in line and str(target) in line and f"epoch {killed_epoch}" in line
        for line in out.splitlines()
    ):
        problems.append(f"no log line says it resumes from {target} at epoch {killed_epoch}:\n{out[-3000:]}")
    if frame.set_index("run_id").loc[killed_run, "status"] != "KILLED":
        problems.append("the killed run is not marked KILLED")
    if finetune["tags.eegphase.resumed_from"] != killed_run:
        problems.append(f"resumed_from tag {finetune['tags.eegphase.resumed_from']!r}, not {killed_run}")
    for key, points in before.items():
        steps = [m.step for m in client.get_metric_history(finetune["run_id"], key)]
        if len(steps) != len(set(steps)):  # the killed run's points after its checkpoint are logged again
            problems.append(f"{key}: steps logged twice in the finished run: {sorted(steps)}")
        after = {(m.step, m.value) for m in client.get_metric_history(finetune["run_id"], key)}
        if not points <= after:
            problems.append(
                f"the finished run lost {len(points - after)} points of {key} logged before the kill"
            )
    if finetune.get("metrics.challenge1/epoch") != 4.0 or finetune.get("metrics.challenge2/epoch") != 4.0:
        problems.append("the finished run does not end with epoch 4 of both tasks")
    have = {a.path for a in client.list_artifacts(finetune["run_id"], "plots")}
    missing = {
        "plots/challenge1_curves.png",
        "plots/challenge1_test.png",
        "plots/challenge2_curves.png",
    } - have
    if missing:
        problems.append(f"plots missing from the finished run: {sorted(missing)}")
    assert not problems, "\n".join(problems)
