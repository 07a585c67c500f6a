"""The SLURM launcher's code path on this machine: ``hydra/launcher=local`` runs each job through submitit."""

from __future__ import annotations

import mlflow

from .conftest import run_cli


def test_submitit_local_launcher_runs_two_jobs_in_their_own_processes(sweep_data, tmp_path):
    run_cli(tmp_path, "hydra/launcher=local", "seed=0,1", data=sweep_data, multirun=True, timeout=400)
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    frame = mlflow.search_runs(experiment_names=["eegphase"])
    parents = frame[frame["tags.eegphase.phase"] == "pipeline"]
    assert sorted(parents["params.seed"]) == ["0", "1"] and (frame["status"] == "FINISHED").all()
    assert len(frame) == 4  # each job: its pipeline run and its finetune run
    # submitit ran each job as its own process and kept its logs and result beside the sweep
    results = list(tmp_path.glob("multirun/*/*/.submitit/*/*_result.pkl"))
    logs = list(tmp_path.glob("multirun/*/*/.submitit/*/*_log.err"))
    assert len(results) == 2 and len(logs) == 2
