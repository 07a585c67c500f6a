"""End to end: two ``python -m eegphase.run`` pipelines finishing together on one SQLite store log their
challenge models, register them as versions of eegphase-c1 / eegphase-c2 and leave the alias on the better
one; a rerun that reuses its fine-tuning registers nothing new."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import mlflow
import mlflow.pytorch
import pytest
import torch
from mlflow.tracking import MlflowClient

from cli_helpers import run_cli

LOGGED = ["tracking.log_models=true"]  # debug=smoke leaves the export out


def pipeline_runs(client: MlflowClient) -> dict[str, object]:
    """seed -> the FINISHED pipeline run, newest first wins."""
    experiment = client.get_experiment_by_name("eegphase")
    found = client.search_runs(
        [experiment.experiment_id], "tags.`eegphase.phase` = 'pipeline'", order_by=["start_time ASC"]
    )
    return {int(run.data.params["seed"]): run for run in found if run.info.status == "FINISHED"}


@pytest.mark.slow  # three smoke pipelines (two at once): minutes
def test_two_pipelines_at_once_register_their_models_and_the_alias_names_the_better(tmp_path):
    data = tmp_path / "hbn"
    with ThreadPoolExecutor(2) as pool:  # generated once (under the data lock), then trained side by side
        list(pool.map(lambda seed: run_cli(tmp_path, "+pipeline=baseline", f"seed={seed}", *LOGGED,
                                           data_root=data, generate=True), (0, 1)))  # fmt: skip
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = pipeline_runs(client)
    assert sorted(runs) == [0, 1]
    for short in ("c1", "c2"):
        name, metric = f"eegphase-{short}", f"test_nrmse_{short}"
        versions = client.search_model_versions(f"name = '{name}'")
        by_run = {v.tags["eegphase.pipeline_run"]: v for v in versions}
        assert sorted(by_run) == sorted(run.info.run_id for run in runs.values())
        for run in runs.values():
            version = by_run[run.info.run_id]
            assert float(version.tags["eegphase.score"]) == pytest.approx(run.data.metrics[metric])
            # the pipeline run lists the model it registered among its outputs
            assert version.source.removeprefix("models:/") in [o.model_id for o in run.outputs.model_outputs]
        best = min(versions, key=lambda v: (float(v.tags["eegphase.score"]), int(v.version)))
        assert str(client.get_registered_model(name).aliases["best"]) == str(best.version)

    run_cli(tmp_path, "+pipeline=baseline", "seed=0", *LOGGED, data_root=data)  # reuses every phase
    rerun = pipeline_runs(client)[0]
    assert rerun.info.run_id != runs[0].info.run_id
    assert {o.model_id for o in rerun.outputs.model_outputs} == {
        o.model_id for o in runs[0].outputs.model_outputs
    }
    assert len(client.search_model_versions("name = 'eegphase-c1'")) == 2  # the same model: no new version

    mlflow.set_tracking_uri(client.tracking_uri)
    try:
        model = mlflow.pytorch.load_model("models:/eegphase-c2@best")
        info = mlflow.models.get_model_info("models:/eegphase-c2@best")
    finally:
        mlflow.set_tracking_uri(None)
    _, channels, samples = info.signature.inputs.inputs[0].shape
    out = model(torch.randn(3, channels, samples))
    assert out.shape == (3, 1) and torch.isfinite(out).all()
