"""Turn the FINISHED pipeline runs of an MLflow experiment into tidy tables: one row per (config, seed).

A *configuration* is the pipeline name plus every logged parameter that varies between runs of the same
pipeline, except the seeds and the settings that only say where or how a run executed (paths, device,
tracking). So ``full`` with ``model=eegnex`` and ``full`` with ``model=labram_small`` become two rows,
while ``full`` and ``no_aux`` are told apart by their names alone.
"""

from __future__ import annotations

import pandas as pd

from eegphase.tracking.queries import PipelineRun, RunQueries

DEFAULT_METRICS = ("test_nrmse_c1", "test_nrmse_c2", "test_score")
SEED_PARAMS = ("seed", "phases.finetune.seed")  # the replicate axis, not a configuration choice
RUNTIME_PARAMS = ("tracking.", "progress", "n_jobs", "device", "reuse", "cache_dir", "work_dir")
RUN_COLUMNS = ("config", "pipeline", "seed", "run_id", "run_name", "start_time")
SUBJECTS_PREFIX = "test_subjects_"  # finetune logs how many test subjects each task's score rests on


def is_choice(param: str) -> bool:
    """Whether a logged parameter can tell two configurations apart."""
    return param not in SEED_PARAMS and not param.startswith(RUNTIME_PARAMS)


def varying_params(runs: list[PipelineRun]) -> list[str]:
    """Choice parameters whose value differs between runs of the same pipeline."""
    by_pipeline: dict[str, list[PipelineRun]] = {}
    for run in runs:
        by_pipeline.setdefault(run.pipeline, []).append(run)
    keys: set[str] = set()
    for group in by_pipeline.values():
        names = {k for run in group for k in run.params if is_choice(k)}
        keys.update(
            k
            for k in names
            if len({run.params.get(k) for run in group}) > 1 and not _follows_the_seed(k, group)
        )
    return sorted(keys)


def _follows_the_seed(param: str, runs: list[PipelineRun]) -> bool:
    """Whether ``param`` equals each run's seed (``split.seed=${seed}`` under experiment=ablation): a replicate
    axis like the seed, not a configuration (else each seed of the ablation would be a configuration of one
    run, with no interval)."""
    return all(run.params.get(param) == run.params.get("seed") is not None for run in runs)


def config_label(pipeline: str, choices: dict[str, str]) -> str:
    """``full`` or ``full [model.name=eegnex, model.size=None]``."""
    if not choices:
        return pipeline
    return f"{pipeline} [{', '.join(f'{k}={v}' for k, v in choices.items())}]"


def runs_frame(runs: list[PipelineRun], metrics: tuple[str, ...] = DEFAULT_METRICS) -> pd.DataFrame:
    """One row per (config, seed), the newest run winning; columns: config, pipeline, seed, run id/name,
    start time, the number of test subjects of each task (``test_subjects_<task>``), the varying parameters,
    and ``metrics`` (NaN where a run did not log one). Every count and score is a plain number."""
    keys = varying_params(runs)
    subjects = subject_columns(runs, metrics)
    rows = []
    for run in runs:
        if "seed" not in run.params:
            raise ValueError(
                f"MLflow run {run.run_id} ({run.name!r}) has no 'seed' param: not a pipeline run?"
            )
        choices = {k: run.params.get(k, "-") for k in keys}
        rows.append(
            {
                "config": config_label(run.pipeline, choices),
                "pipeline": run.pipeline,
                "seed": int(run.params["seed"]),
                "run_id": run.run_id,
                "run_name": run.name,
                "start_time": run.start_time,
                **{s: run.metrics.get(s, float("nan")) for s in subjects},
                **choices,
                **{m: run.metrics.get(m, float("nan")) for m in metrics},
            }
        )
    columns = [*RUN_COLUMNS, *subjects, *keys, *metrics]
    frame = pd.DataFrame(rows, columns=columns)
    frame = frame.sort_values("start_time", ascending=False).drop_duplicates(["config", "seed"], keep="first")
    return frame.sort_values(["pipeline", "config", "seed"]).reset_index(drop=True)


def subject_columns(runs: list[PipelineRun], metrics: tuple[str, ...] = ()) -> list[str]:
    """``test_subjects_<task>`` of every task some run logged it for (unless compared as a metric)."""
    found = {k for run in runs for k in run.metrics if k.startswith(SUBJECTS_PREFIX)}
    return sorted(found - set(metrics))


def choice_columns(frame: pd.DataFrame, metrics: tuple[str, ...]) -> list[str]:
    """The varying-parameter columns of a ``runs_frame``."""
    return [
        c
        for c in frame.columns
        if c not in RUN_COLUMNS and c not in metrics and not c.startswith(SUBJECTS_PREFIX)
    ]


def load_runs(tracking_uri: str, experiment: str, metrics: tuple[str, ...] = DEFAULT_METRICS) -> pd.DataFrame:
    """``runs_frame`` of the FINISHED pipeline runs of ``experiment``; an error when there are none."""
    runs = RunQueries(tracking_uri).finished_pipeline_runs(experiment)
    if not runs:
        raise ValueError(
            f"MLflow experiment {experiment!r} in {tracking_uri} has no FINISHED pipeline runs "
            "(tag eegphase.phase=pipeline); run python -m eegphase.run +pipeline=... first"
        )
    return runs_frame(runs, metrics)


def finetune_curves(tracking_uri: str, runs: pd.DataFrame) -> pd.DataFrame:
    """Validation loss per epoch of each fine-tuning task of each run: columns config, pipeline, seed,
    task, epoch, val_loss. Reused fine-tuning runs are followed to the run that trained."""
    queries = RunQueries(tracking_uri)
    rows = []
    for run in runs.itertuples(index=False):
        finetune_run = queries.phase_run_id(run.run_id, "finetune")
        if finetune_run is None:
            continue
        keys = queries.metric_keys(finetune_run)
        for task in sorted(k[: -len("/val/loss")] for k in keys if k.endswith("/val/loss")):
            losses = queries.metric_history(finetune_run, f"{task}/val/loss")
            epochs = dict(queries.metric_history(finetune_run, f"{task}/epoch"))
            for index, (step, loss) in enumerate(losses, start=1):
                epoch = int(epochs.get(step, index))
                rows.append((run.config, run.pipeline, run.seed, task, epoch, loss))
    return pd.DataFrame(rows, columns=["config", "pipeline", "seed", "task", "epoch", "val_loss"])
