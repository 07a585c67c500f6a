"""A real MLflow store (SQLite in a tmp folder) holding runs laid out like ``eegphase.run``'s.

Runs are logged with the project's own ``Tracker`` and tag names, exactly as the runner logs them: a parent
run per pipeline (tag ``eegphase.phase=pipeline``, params = flattened config, final metrics), nested phase
runs, and per-epoch ``<task>/val/loss`` + ``<task>/epoch`` histories on the fine-tuning run. Running the real
pipeline takes about a minute per run here, too slow for this suite.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from eegphase.tracking.mlflow_tracker import TAG_PHASE, TAG_PIPELINE, TAG_REUSED, Tracker

EXPERIMENT = "report-test"
TASKS = ("challenge1", "challenge2")


def base_config(pipeline: str, seed: int, model: str = "labram") -> dict:
    """A small stand-in for the resolved config the runner logs (same keys for seeds and paths)."""
    return {
        "seed": seed,
        "cache_dir": "cache",
        "work_dir": "outputs/phases",
        "device": "auto",
        "progress": False,
        "tracking": {"uri": "sqlite:///mlflow.db", "experiment": EXPERIMENT},
        "model": {"name": model, "size": "tiny"},
        "pipeline": {"name": pipeline},
        "phases": {"finetune": {"seed": seed, "epochs": 3, "lr": 0.001}},
    }


def val_losses(score: float, task_index: int) -> list[float]:
    """Three epochs of a made-up validation loss that depends on the run (so curves differ)."""
    return [score + task_index + 1.0 / epoch for epoch in (1, 2, 3)]


@dataclass
class StoredRun:
    run_id: str
    pipeline: str
    seed: int
    metrics: dict[str, float]
    finetune_run_id: str


@dataclass
class Store:
    uri: str
    experiment: str
    runs: list[StoredRun] = field(default_factory=list)  # every FINISHED parent run, superseded ones included
    superseded: list[str] = field(default_factory=list)  # older runs of a repeated (config, seed)
    failed: list[str] = field(default_factory=list)


def log_pipeline_run(
    tracker: Tracker,
    pipeline: str,
    seed: int,
    c1: float,
    c2: float,
    model: str = "labram",
    fail: bool = False,
    reuse_finetune_of: str | None = None,
) -> StoredRun:
    """One parent run + its finetune child, like ``run_pipeline`` logs them."""
    metrics = {"test_nrmse_c1": c1, "test_nrmse_c2": c2, "test_score": 0.3 * c1 + 0.7 * c2}
    # as finetune logs them: test subjects per task (challenge 2 lost one subject in seed 0)
    metrics |= {"test_subjects_c1": 14.0, "test_subjects_c2": 13.0 if seed == 0 else 14.0}
    tags = {TAG_PHASE: "pipeline", TAG_PIPELINE: pipeline, "eegphase.overrides": f"+pipeline={pipeline}"}
    try:
        with tracker.run(f"{pipeline}-seed{seed}", tags) as parent:
            tracker.log_params(parent, base_config(pipeline, seed, model))
            child_tags = {TAG_PHASE: "finetune", TAG_PIPELINE: pipeline}
            if reuse_finetune_of is not None:
                reused = {**child_tags, TAG_REUSED: "true", "eegphase.reused_run": reuse_finetune_of}
                with tracker.run("finetune", reused, parent) as child:
                    tracker.log_metrics(child, metrics)
            else:
                with tracker.run("finetune", {**child_tags, TAG_REUSED: "false"}, parent) as child:
                    for task_index, task in enumerate(TASKS):
                        for epoch, loss in enumerate(val_losses(metrics["test_score"], task_index), start=1):
                            step = 4 * epoch
                            tracker.log_metrics(
                                child, {f"{task}/val/loss": loss, f"{task}/epoch": epoch}, step
                            )
                    tracker.log_metrics(child, metrics)
            if fail:
                raise RuntimeError("simulated crash")
            tracker.log_metrics(parent, metrics)
    except RuntimeError:
        pass
    return StoredRun(parent, pipeline, seed, metrics, child)


@pytest.fixture(scope="session")
def pipeline_store(tmp_path_factory) -> Store:
    """baseline and full with seeds 0-2, a FAILED full run (seed 3, ignored), no_aux with one seed. Full seed 1
    ran twice with different results (the newer counts); full seed 2 ran twice, the second time reusing the
    first run's finetune phase (its curves live on the first run)."""
    folder = tmp_path_factory.mktemp("mlflow-store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    tracker = Tracker(uri, EXPERIMENT)
    store = Store(uri, EXPERIMENT)
    baseline = {0: (1.10, 1.00), 1: (1.20, 0.98), 2: (1.05, 1.04)}
    full = {0: (1.00, 0.95), 1: (1.15, 0.90), 2: (1.02, 1.01)}
    for seed, (c1, c2) in baseline.items():
        store.runs.append(log_pipeline_run(tracker, "baseline", seed, c1, c2))
    old = log_pipeline_run(tracker, "full", 1, 9.0, 9.0)
    first = log_pipeline_run(tracker, "full", 2, *full[2])
    store.runs += [old, first]
    store.superseded += [old.run_id, first.run_id]
    for seed, (c1, c2) in full.items():
        reuse = first.finetune_run_id if seed == 2 else None
        store.runs.append(log_pipeline_run(tracker, "full", seed, c1, c2, reuse_finetune_of=reuse))
    store.failed.append(log_pipeline_run(tracker, "full", 3, 0.1, 0.1, fail=True).run_id)
    store.runs.append(log_pipeline_run(tracker, "no_aux", 0, 1.30, 1.10))
    return store
