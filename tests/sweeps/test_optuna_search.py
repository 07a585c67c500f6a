"""``hparams_search=optuna``: a real TPE search whose study persists in ./optuna.db and resumes."""

from __future__ import annotations

import math

import mlflow
import optuna
import pytest

from cli_helpers import run_cli
from eegphase.run import FAILED_TRIAL_SCORE

from .conftest import BASELINE_C1

LR = "phases.finetune.lr"


def _study(workdir) -> optuna.Study:
    return optuna.load_study(study_name="eegphase", storage=f"sqlite:///{workdir / 'optuna.db'}")


def _pipeline_runs(workdir):
    mlflow.set_tracking_uri(f"sqlite:///{workdir / 'mlflow.db'}")
    frame = mlflow.search_runs(experiment_names=["eegphase"], order_by=["start_time ASC"])
    return frame[frame["tags.eegphase.phase"] == "pipeline"]


@pytest.fixture(scope="module")
def search(sweep_data, tmp_path_factory):
    """Two trials, then a second invocation in the same folder asking for one more."""
    workdir = tmp_path_factory.mktemp("optuna")
    run_cli(
        workdir,
        *BASELINE_C1,
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=2",
        **sweep_data,
        multirun=True,
    )
    after_first = [t.params[LR] for t in _study(workdir).trials]
    run_cli(
        workdir,
        *BASELINE_C1,
        "hparams_search=optuna",
        "hydra.sweeper.n_trials=1",
        **sweep_data,
        multirun=True,
    )
    return workdir, after_first


def test_second_invocation_resumes_the_study(search):
    workdir, after_first = search
    studies = optuna.study.get_all_study_summaries(f"sqlite:///{workdir / 'optuna.db'}")
    assert [s.study_name for s in studies] == ["eegphase"]
    trials = _study(workdir).trials
    assert [t.number for t in trials] == [0, 1, 2]
    assert [t.params[LR] for t in trials[:2]] == after_first
    # An unseeded sampler: the resumed trial does not replay the first invocation's parameters.
    assert trials[2].params[LR] not in after_first
    for trial in trials:
        assert trial.state == optuna.trial.TrialState.COMPLETE
        assert math.isfinite(trial.value) and 0.0 < trial.value < 10.0
        assert 1e-4 <= trial.params[LR] <= 3e-3
        assert 0.3 <= trial.params["phases.pretrain.mask_ratio"] <= 0.7


def test_every_trial_is_an_mlflow_pipeline_run(search):
    workdir, _ = search
    runs = _pipeline_runs(workdir)
    assert len(runs) == 3 and (runs["status"] == "FINISHED").all()
    trials = _study(workdir).trials
    assert sorted(float(v) for v in runs[f"params.{LR}"]) == pytest.approx(
        sorted(t.params[LR] for t in trials)
    )
    # The value Optuna minimised is the validation NRMSE the pipeline logged (val_score with both tasks).
    val_nrmse_by_lr = {
        float(lr): v for lr, v in zip(runs[f"params.{LR}"], runs["metrics.val_nrmse_c1"], strict=True)
    }
    for trial in trials:
        assert trial.value == pytest.approx(val_nrmse_by_lr[trial.params[LR]])


def test_a_failing_trial_is_scored_and_the_search_goes_on(search, sweep_data):
    workdir, _ = search
    # A fixed lr of -1 makes the optimiser raise inside the fine-tuning phase.
    proc = run_cli(workdir, *BASELINE_C1, "hparams_search=optuna", "hydra.sweeper.n_trials=1", f"{LR}=-1.0",
                   **sweep_data, multirun=True, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    trials = _study(workdir).trials
    assert len(trials) == 4
    failed = trials[3]
    assert failed.state == optuna.trial.TrialState.COMPLETE and failed.value == FAILED_TRIAL_SCORE
    assert failed.user_attrs[LR] == "-1.0"
    runs = _pipeline_runs(workdir)
    assert runs["status"].tolist() == ["FINISHED", "FINISHED", "FINISHED", "FAILED"]
