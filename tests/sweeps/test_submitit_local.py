"""The SLURM launcher's code path on this machine: ``hydra/launcher=local`` runs each job through submitit."""

from __future__ import annotations

import mlflow
import pytest

from cli_helpers import run_cli

from .conftest import BASELINE_C1


@pytest.mark.slow  # ~45 s like the two-task DDP job below; CI runs both in make test-slow
def test_submitit_local_launcher_runs_two_jobs_in_their_own_processes(sweep_data, tmp_path):
    run_cli(
        tmp_path, *BASELINE_C1, "hydra/launcher=local", "seed=0,1", **sweep_data, multirun=True, timeout=400
    )
    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'mlflow.db'}")
    frame = mlflow.search_runs(experiment_names=["eegphase"])
    parents = frame[frame["tags.eegphase.phase"] == "pipeline"]
    assert sorted(parents["params.seed"]) == ["0", "1"] and (frame["status"] == "FINISHED").all()
    assert len(frame) == 4  # each job: its pipeline run and its finetune run
    # submitit ran each job as its own process and kept its logs and result beside the sweep
    results = list(tmp_path.glob("multirun/*/*/.submitit/*/*_result.pkl"))
    logs = list(tmp_path.glob("multirun/*/*/.submitit/*/*_log.err"))
    assert len(results) == 2 and len(logs) == 2


@pytest.mark.slow  # a two-task submitit job running one DDP pipeline: ~47 s
def test_a_job_of_two_tasks_is_one_ddp_pipeline(sweep_data, tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir(), two.mkdir()
    run_cli(one, *BASELINE_C1, "phases.finetune.batch_size=8", **sweep_data)
    run_cli(two, *BASELINE_C1, "hydra/launcher=local", "hydra.launcher.tasks_per_node=2",
            "phases.finetune.batch_size=4", **sweep_data, multirun=True, timeout=400)  # fmt: skip
    frames = {}
    for name, folder in (("one", one), ("two", two)):
        mlflow.set_tracking_uri(f"sqlite:///{folder / 'mlflow.db'}")
        frames[name] = mlflow.search_runs(experiment_names=["eegphase"])
    frame = frames["two"]
    assert len(frame) == 2 and (frame["status"] == "FINISHED").all()  # rank 0 alone tracked the job
    assert len(list(two.glob("multirun/*/*/.submitit/*/*_log.err"))) == 2  # two tasks ran it
    # the two tasks joined one process group: 2 x 4 windows per step train like 1 x 8
    for metric in ("metrics.val_nrmse_c1", "metrics.test_nrmse_c1"):
        value = frame[frame["tags.eegphase.phase"] == "pipeline"].iloc[0][metric]
        reference = frames["one"][frames["one"]["tags.eegphase.phase"] == "pipeline"].iloc[0][metric]
        # equal up to float32 summation order (an all-reduce of two partial means instead of one mean): see
        # DDP_REL in tests/pipeline/test_torchrun.py
        assert value == pytest.approx(reference, rel=2e-3)
