"""The product end to end: ``python -m eegphase.run`` on a tiny dataset, tracked in a real MLflow store."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient

from cli_helpers import TINY, run_cli

from .conftest import ROOT, runs

PHASES = {"pretrain", "contrastive", "finetune"}


def _phase_runs(frame, parent_id):
    return frame[frame["tags.mlflow.parentRunId"] == parent_id].set_index("tags.eegphase.phase")


@pytest.fixture(scope="module")
def full_run(tiny_hbn, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("full")
    run_cli(workdir, "+pipeline=full", data_root=tiny_hbn)
    return workdir


def test_full_pipeline_tracks_every_phase(full_run):
    workdir = full_run
    frame = runs(workdir)
    parent = frame[frame["tags.eegphase.phase"] == "pipeline"].iloc[0]
    assert parent["status"] == "FINISHED" and parent["tags.eegphase.pipeline"] == "full"
    for metric in ("test_nrmse_c1", "test_nrmse_c2", "test_score"):
        assert 0.0 < parent[f"metrics.{metric}"] < 10.0
    assert parent["metrics.test_score"] == pytest.approx(
        0.3 * parent["metrics.test_nrmse_c1"] + 0.7 * parent["metrics.test_nrmse_c2"]
    )
    phases = _phase_runs(frame, parent["run_id"])
    assert set(phases.index) == PHASES
    assert (phases["status"] == "FINISHED").all() and (phases["tags.eegphase.reused"] == "false").all()
    assert phases.loc["pretrain", "tags.eegphase.init_from"] == ""
    assert phases.loc["contrastive", "tags.eegphase.init_from"] == (
        f"runs:/{phases.loc['pretrain', 'run_id']}/checkpoints/best.pt"
    )
    assert phases.loc["finetune", "tags.eegphase.init_from"].startswith(
        f"runs:/{phases.loc['contrastive', 'run_id']}/"
    )
    assert phases["tags.eegphase.fingerprint"].str.len().min() >= 16
    assert phases.loc["pretrain", "params.phase.objective"] == "mem"
    assert frame.set_index("run_id").loc[phases.loc["pretrain", "run_id"], "metrics.train/mem"] > 0
    contrastive = frame.set_index("run_id").loc[phases.loc["contrastive", "run_id"]]
    assert -1.0 <= contrastive["metrics.train/pos_similarity"] <= 1.0
    for split in ("train", "val"):  # how the pairs were drawn: mostly true same-moment pairs
        same, fallback = (
            contrastive[f"metrics.{split}/pairs_same_moment"],
            contrastive[f"metrics.{split}/pairs_fallback"],
        )
        assert 0.5 < same <= 1.0 and 0.0 <= fallback < 0.5 and same + fallback == pytest.approx(1.0), split


def test_phase_runs_list_their_windows_tables_and_the_ui_opens_on_them(full_run):
    """Each phase run's Datasets: the windows tables it trained, validated (and finetune: tested) on; the
    experiment is marked as model training, so MLflow's UI opens on these runs."""
    frame = runs(full_run)
    client = MlflowClient(f"sqlite:///{full_run / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("eegphase")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    parent = frame[frame["tags.eegphase.phase"] == "pipeline"].iloc[0]
    for phase, run_id in _phase_runs(frame, parent["run_id"])["run_id"].items():
        inputs = client.get_run(run_id).inputs.dataset_inputs
        contexts = {i.dataset.name: {t.key: t.value for t in i.tags}["mlflow.data.context"] for i in inputs}
        expected = (
            {"training", "validation", "testing"} if phase == "finetune" else {"training", "validation"}
        )
        assert set(contexts.values()) == expected, (phase, contexts)
        split = {"training": "train", "validation": "val", "testing": "test"}
        assert all(name.endswith(f"-{split[context]}") for name, context in contexts.items()), contexts
        assert all(json.loads(i.dataset.profile)["num_rows"] > 0 for i in inputs)


def test_artifacts_are_checkpoints_plots_and_config(full_run):
    import mlflow

    workdir = full_run
    frame = runs(workdir)
    parent = frame[frame["tags.eegphase.phase"] == "pipeline"].iloc[0]
    phases = _phase_runs(frame, parent["run_id"])
    client = mlflow.tracking.MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")

    def listing(run_id, path=None):
        return {a.path for a in client.list_artifacts(run_id, path)}

    finetune = phases.loc["finetune", "run_id"]
    assert {"config.yaml", "checkpoints", "plots"} <= listing(finetune)
    assert "checkpoints/challenge1/best.pt" in listing(finetune, "checkpoints/challenge1")
    assert "plots/challenge1_test.png" in listing(finetune, "plots")
    assert "plots/similarity.png" in listing(phases.loc["contrastive", "run_id"], "plots")
    channels = client.download_artifacts(parent["run_id"], "channels.json", str(workdir))
    assert len(json.loads(Path(channels).read_text())["hbn"]["names"]) == 129  # the parent logs channel sets
    local = mlflow.artifacts.download_artifacts(
        f"runs:/{phases.loc['pretrain', 'run_id']}/checkpoints/best.pt",
        tracking_uri=f"sqlite:///{workdir / 'mlflow.db'}",
    )
    state = torch.load(local, map_location="cpu", weights_only=True)
    assert any(k.startswith("encoder.") for k in state["model"])


def test_rerun_reuses_every_phase_with_identical_metrics(full_run, tiny_hbn):
    workdir = full_run
    before = runs(workdir)
    first = before[before["tags.eegphase.phase"] == "pipeline"].iloc[0]
    run_cli(workdir, "+pipeline=full", data_root=tiny_hbn)
    after = runs(workdir)
    parent = after[after["tags.eegphase.phase"] == "pipeline"].iloc[0]
    assert parent["run_id"] != first["run_id"]
    phases = _phase_runs(after, parent["run_id"])
    assert set(phases.index) == PHASES and (phases["tags.eegphase.reused"] == "true").all()
    for metric in ("test_nrmse_c1", "test_nrmse_c2", "test_score"):
        assert parent[f"metrics.{metric}"] == first[f"metrics.{metric}"]


def test_no_contrastive_shares_the_pretrain_phase(full_run, tiny_hbn):
    workdir = full_run
    run_cli(workdir, "+pipeline=no_contrastive", data_root=tiny_hbn)
    frame = runs(workdir)
    parent = frame[frame["tags.eegphase.pipeline"] == "no_contrastive"]
    parent = parent[parent["tags.eegphase.phase"] == "pipeline"].iloc[0]
    phases = _phase_runs(frame, parent["run_id"])
    assert set(phases.index) == {"pretrain", "finetune"}
    assert phases.loc["pretrain", "tags.eegphase.reused"] == "true"
    assert phases.loc["finetune", "tags.eegphase.reused"] == "false"


def test_killed_during_finetune_resumes_there(tiny_hbn, tmp_path):
    longer = [
        "phases.finetune.epochs=4",
        "phases.finetune.max_batches_per_epoch=6",
        "+pipeline=baseline",  # fine-tuning only: the kill lands in the phase under test
    ]
    cmd = [sys.executable, "-m", "eegphase.run", *TINY, f"data.root={tiny_hbn}", "~data.generate", *longer]
    env = {**os.environ, "EEGPHASE_CONF_DIR": str(ROOT / "conf")}
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 900  # a generous bound for a busy machine, not a speed check
    target = None
    while time.time() < deadline and proc.poll() is None:
        found = list((tmp_path / "outputs").glob("smoke-phases/finetune-*/challenge1/last.pt"))
        if found:
            target = found[0]
            break
        time.sleep(0.05)
    assert proc.poll() is None and target is not None, proc.stderr.read().decode()[-3000:]
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = runs(tmp_path)
    assert (killed["status"] == "RUNNING").sum() == 2  # a SIGKILL leaves its runs open; the rerun closes them
    killed_epoch = torch.load(target, map_location="cpu", weights_only=True)["epoch"]
    assert 1 <= killed_epoch < 4

    run_cli(tmp_path, *longer, data_root=tiny_hbn)
    frame = runs(tmp_path)
    assert not (frame["status"] == "RUNNING").any()
    parent = frame[(frame["tags.eegphase.phase"] == "pipeline") & (frame["status"] == "FINISHED")].iloc[0]
    finetune = _phase_runs(frame, parent["run_id"]).loc["finetune"]
    stale = finetune["tags.eegphase.resumed_from"]
    assert frame.set_index("run_id").loc[stale, "status"] == "KILLED"
    assert finetune["metrics.challenge1/epoch"] == 4.0

    # the resumed result equals an uninterrupted run of the same configuration
    clean = tmp_path / "clean"
    clean.mkdir()
    run_cli(clean, *longer, data_root=tiny_hbn)
    reference = runs(clean)
    reference = reference[reference["tags.eegphase.phase"] == "pipeline"].iloc[0]
    for metric in ("test_nrmse_c1", "test_nrmse_c2"):
        assert parent[f"metrics.{metric}"] == pytest.approx(reference[f"metrics.{metric}"], rel=1e-6)


@pytest.mark.slow
def test_two_by_two_multirun_grid(tiny_hbn, tmp_path):
    proc = run_cli(
        tmp_path, "+pipeline=baseline,no_contrastive", "seed=0,1", data_root=tiny_hbn, multirun=True
    )
    frame = runs(tmp_path)
    parents = frame[frame["tags.eegphase.phase"] == "pipeline"]
    assert len(parents) == 4 and (parents["status"] == "FINISHED").all()
    assert set(zip(parents["tags.eegphase.pipeline"], parents["params.seed"], strict=True)) == {
        ("baseline", "0"), ("baseline", "1"), ("no_contrastive", "0"), ("no_contrastive", "1")
    }  # fmt: skip
    pretrain = frame[frame["tags.eegphase.phase"] == "pretrain"]
    assert (pretrain["tags.eegphase.reused"] == "false").sum() == 1  # shared by both seeds: trained once
    finetunes = frame[frame["tags.eegphase.phase"] == "finetune"]
    assert finetunes["tags.eegphase.fingerprint"].nunique() == 4
    assert "test_score" in proc.stdout


def test_bad_inputs_fail_clearly_and_keep_what_is_tracked(full_run, tiny_hbn):
    workdir = full_run
    before = runs(workdir)
    bad = run_cli(workdir, "+pipeline=full", "phases.finetune.epoks=3", data_root=tiny_hbn, check=False)
    assert bad.returncode != 0 and "epoks" in bad.stderr
    bad = run_cli(workdir, "+pipeline=full", "model=labram_gigantic", data_root=tiny_hbn, check=False)
    assert bad.returncode != 0 and "labram_gigantic" in bad.stderr
    bad = run_cli(workdir, data_root=tiny_hbn, check=False)
    assert bad.returncode != 0 and "+pipeline=full" in bad.stderr
    bad = run_cli(workdir, "+pipeline=baseline", "phases.finetune.init_from=runs:/not-a-run/best.pt",
                  data_root=tiny_hbn, check=False)  # fmt: skip
    assert bad.returncode != 0 and "not a valid MLflow URI" in bad.stderr
    missing = "runs:/" + "0" * 32 + "/checkpoints/best.pt"
    bad = run_cli(workdir, "+pipeline=baseline", f"phases.finetune.init_from={missing}", data_root=tiny_hbn,
                  check=False)  # fmt: skip
    assert bad.returncode != 0 and "0" * 32 in bad.stderr
    # a checkpoint of another architecture: shapes do not fit
    frame = runs(workdir)
    pretrain_run = frame[
        (frame["tags.eegphase.phase"] == "pretrain") & (frame["tags.eegphase.reused"] == "false")
    ]
    uri = f"runs:/{pretrain_run.iloc[0]['run_id']}/checkpoints/best.pt"
    bad = run_cli(workdir, "+pipeline=baseline", f"phases.finetune.init_from={uri}", "model=labram_small",
                  data_root=tiny_hbn, check=False)  # fmt: skip
    assert bad.returncode != 0 and "shape" in bad.stderr
    after = runs(workdir)
    kept = after.set_index("run_id").loc[before["run_id"]]
    assert (kept["status"] == before.set_index("run_id")["status"]).all()
    assert not (after["status"] == "RUNNING").any()
    failed = after[~after["run_id"].isin(before["run_id"])]
    assert set(failed["status"]) <= {"FAILED"}
