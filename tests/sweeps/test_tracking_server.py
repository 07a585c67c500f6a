"""The same pipeline code tracks into a real ``mlflow server`` over HTTP (runs, metrics, proxied artifacts)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest
import torch
from mlflow.tracking import MlflowClient

from cli_helpers import run_cli

from .conftest import BASELINE_C1

# The server starts through eegphase.tracking.server (MLflow's CLI plus the SQLAlchemy 1.4 aliases it needs).
STARTUP_S = 90
# A client that cannot reach the server gives up in seconds rather than retrying for minutes.
CLIENT_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1", "MLFLOW_HTTP_REQUEST_TIMEOUT": "60"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM the server's process group (the CLI and its uvicorn worker), SIGKILL it if it lingers."""
    if proc.poll() is not None:
        return
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=15)


def _wait_until_up(proc: subprocess.Popen, uri: str, log_path: Path) -> None:
    deadline = time.monotonic() + STARTUP_S
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"mlflow server exited ({proc.returncode}):\n{log_path.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(f"{uri}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"mlflow server not up after {STARTUP_S} s:\n{log_path.read_text()[-3000:]}")
        time.sleep(0.5)


@pytest.fixture(scope="module")
def tracking_server(tmp_path_factory):
    """``mlflow server`` on a free local port with a SQLite backend and proxied artifacts; always stopped."""
    base = tmp_path_factory.mktemp("mlflow-server")
    port, log_path = _free_port(), base / "server.log"
    options = {
        "--host": "127.0.0.1",
        "--port": str(port),
        "--workers": "1",
        "--backend-store-uri": f"sqlite:///{base / 'server.db'}",
        "--artifacts-destination": str(base / "artifacts"),
    }
    cmd = [
        sys.executable,
        "-m",
        "eegphase.tracking.server",
        "server",
        *(p for item in options.items() for p in item),
    ]
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no background job workers
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            cmd, cwd=base, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
    uri = f"http://127.0.0.1:{port}"
    try:
        _wait_until_up(proc, uri, log_path)
        yield uri, base
    finally:
        _stop(proc)


def test_pipeline_tracks_into_a_tracking_server(tracking_server, sweep_data, tmp_path):
    uri, base = tracking_server
    # A one-job multirun: the experiment is created on the server by the multirun callback, then used.
    overrides = [f"tracking.uri={uri}", "tracking.experiment=served"]
    run_cli(tmp_path, *BASELINE_C1, *overrides, **sweep_data, multirun=True, env=CLIENT_ENV)
    assert not (tmp_path / "mlflow.db").exists() and not (tmp_path / "mlartifacts").exists()

    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("served")
    assert experiment is not None and experiment.artifact_location.startswith("mlflow-artifacts:")
    runs = {r.data.tags["eegphase.phase"]: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"pipeline", "finetune"}
    parent, finetune = runs["pipeline"], runs["finetune"]
    assert parent.info.status == "FINISHED" and finetune.info.status == "FINISHED"
    assert finetune.data.tags["mlflow.parentRunId"] == parent.info.run_id
    assert 0.0 < parent.data.metrics["test_nrmse_c1"] < 10.0
    assert parent.data.params["tracking.uri"] == uri
    history = client.get_metric_history(finetune.info.run_id, "challenge1/train/loss")
    assert len(history) >= 1 and all(m.value > 0 for m in history)

    # Artifacts went through the server into its --artifacts-destination, and come back by runs:/ URI.
    stored = list((base / "artifacts").rglob("checkpoints/challenge1/best.pt"))
    assert len(stored) == 1
    local = mlflow.artifacts.download_artifacts(
        f"runs:/{finetune.info.run_id}/checkpoints/challenge1/best.pt",
        dst_path=str(tmp_path / "dl"),
        tracking_uri=uri,
    )
    state = torch.load(local, map_location="cpu", weights_only=True)
    assert Path(local).stat().st_size == stored[0].stat().st_size
    assert all(torch.isfinite(t).all() for t in state["model"].values() if t.is_floating_point())
