"""Chain the phases of a pipeline, passing checkpoints downstream as MLflow URIs.

One parent MLflow run per pipeline, one nested run per phase. A phase whose fingerprint matches a FINISHED
run is reused (a nested run tagged ``eegphase.reused=true`` records it); an interrupted phase resumes from
the last checkpoint in its work folder; everything else trains. A process that finds another one training
the same phase fingerprint (a lease beside the work folder) waits for it, then reuses its run.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import re
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch
from mlflow.entities import Metric
from omegaconf import DictConfig, OmegaConf

from eegphase.data.datasets import WindowDataset, windows_path
from eegphase.data.prepare_cache import prepare_from_config
from eegphase.engine.allocator import configure_cpu_allocator
from eegphase.engine.distributed import barrier, broadcast_from_main, dist_info, resolve_device
from eegphase.engine.errors import CheckpointError
from eegphase.locks import file_lock
from eegphase.paths import require_writable
from eegphase.phases import contrastive, finetune, pretrain
from eegphase.phases.common import PhaseContext, PhaseOutput
from eegphase.pipeline.fingerprint import data_key, phase_fingerprint
from eegphase.pipeline.plan import check_prepared_data, check_run_config, needed_modes
from eegphase.tracking.mlflow_tracker import (
    TAG_FINGERPRINT,
    TAG_INIT_FROM,
    TAG_OVERRIDES,
    TAG_PHASE,
    TAG_PIPELINE,
    TAG_RESUMED,
    TAG_REUSED,
    Tracker,
    local_store_folders,
    ui_link,
)
from eegphase.tracking.rank_zero import RankZeroTracker

log = logging.getLogger(__name__)

PHASE_RUNNERS: dict[str, Callable[[PhaseContext], PhaseOutput]] = {
    "pretrain": pretrain.run,
    "contrastive": contrastive.run,
    "finetune": finetune.run,
}
CHECKPOINT_ARTIFACT = "checkpoints/best.pt"
COMPLETE_MARKER = "phase-complete"  # in a phase's work folder: its checkpoints are final, not a resume point


@dataclass
class PipelineResult:
    parent_run_id: str
    ui_link: str = ""  # the pipeline run on the MLflow UI's model-training view
    phase_runs: dict[str, str] = field(default_factory=dict)  # phase -> run id of the run holding its weights
    reused: dict[str, bool] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    models: dict[str, str] = field(default_factory=dict)  # fine-tuned task -> MLflow model id (models:/<id>)
    registered: dict[str, str] = field(default_factory=dict)  # registered model name -> this run's version


def ensure_data(cfg: DictConfig, modes: list[str]):
    """Generate (if asked) and prepare the data as ``python -m eegphase.prepare`` does, under the same locks
    (:func:`prepare_from_config`): several jobs of a sweep, or a prepare racing a run, build a cache once."""
    manifest, report, _ = prepare_from_config(cfg, modes)
    for path, why in report.skipped:
        log.warning("skipped %s", why if path in why else f"{path}: {why}")
    return manifest


def check_writable_folders(cfg: DictConfig) -> None:
    """Every folder the run writes to (cache, phase work folders, a local MLflow store) can be written; the
    error names the path and its config key."""
    folders = {"cache_dir": cfg.cache_dir, "work_dir": cfg.work_dir}
    folders.update(local_store_folders(str(cfg.tracking.uri), cfg.tracking.artifact_location))
    for key, path in folders.items():
        require_writable(path, key)


def effective_seed(cfg: DictConfig, phase: str) -> int:
    """Upstream phases keep their own seed unless ``seed_all_phases``; fine-tuning follows ``seed``."""
    if phase == "finetune" or cfg.seed_all_phases:
        return int(cfg.seed) if cfg.seed_all_phases else int(cfg.phases.finetune.seed)
    return int(cfg.phases[phase].seed)


def run_pipeline(cfg: DictConfig, overrides: list[str] | None = None) -> PipelineResult:
    """Run (or reuse) every phase of ``cfg.pipeline``; returns the runs and the final metrics."""
    phases = check_run_config(cfg)
    configure_cpu_allocator(str(cfg.cpu_allocator))
    info = dist_info()
    if info.is_main:
        check_writable_folders(cfg)  # before any data is generated, prepared or tracked
    # Under torchrun rank 0 prepares the data and tracks; the others wait for its answers.
    manifest = ensure_data(cfg, needed_modes(cfg, phases)) if info.is_main else None
    if info.is_main:
        check_prepared_data(cfg, phases)  # empty task windows, targets without values: before any run
    key = data_key(manifest.fingerprint, cfg) if info.is_main else None
    key = broadcast_from_main(key)
    tracker_type = RankZeroTracker if info.enabled else Tracker
    tracker = tracker_type(cfg.tracking.uri, cfg.tracking.experiment, cfg.tracking.artifact_location)
    device = resolve_device(str(cfg.device), info)
    name = str(cfg.pipeline.name)
    tags = {TAG_PHASE: "pipeline", TAG_PIPELINE: name, TAG_OVERRIDES: " ".join(overrides or [])[:5000]}
    with tracker.run(f"{name}-seed{cfg.seed}", tags) as parent:
        tracker.log_params(parent, OmegaConf.to_container(cfg, resolve=True))
        tracker.log_text(parent, OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
        if manifest is not None:  # each dataset's channel set as prepare chose it (cache_dir/channels.json)
            tracker.log_text(parent, json.dumps(manifest.channels, indent=1, sort_keys=True), "channels.json")
        result = PipelineResult(parent, ui_link(cfg.tracking.uri, tracker.experiment_id, parent))
        upstream_fp: str | None = None
        upstream_uri: str | None = None
        finetune_metrics: dict[str, float] = {}  # the fine-tuning run's scores: they rank registered models
        for phase in phases:
            seed = effective_seed(cfg, phase)
            explicit = cfg.phases[phase].get("init_from")
            init_uri = str(explicit) if explicit else upstream_uri
            fingerprint = phase_fingerprint(cfg, phase, seed, upstream_fp or init_uri, key)
            phase_tags = {
                TAG_PHASE: phase,
                TAG_PIPELINE: name,
                TAG_FINGERPRINT: fingerprint,
                TAG_INIT_FROM: init_uri or "",
                TAG_OVERRIDES: tags[TAG_OVERRIDES],
            }
            found = tracker.find_finished(fingerprint, phase) if cfg.reuse else None
            with contextlib.ExitStack() as held:
                if found is None:
                    held.enter_context(phase_lease(cfg, phase, fingerprint, info.is_main))
                    # a process that held the lease may have just finished this very phase
                    found = tracker.find_finished(fingerprint, phase) if cfg.reuse else None
                if found is not None:
                    weights_run = found.info.run_id
                    with tracker.run(
                        phase, {**phase_tags, TAG_REUSED: "true", "eegphase.reused_run": weights_run}, parent
                    ) as run_id:
                        tracker.log_metrics(run_id, found.data.metrics)
                    metrics = dict(found.data.metrics)
                    log.info("%s: reusing run %s (fingerprint %s)", phase, weights_run, fingerprint)
                else:
                    stale = tracker.close_stale(fingerprint, phase)
                    with tracker.run(phase, {**phase_tags, TAG_REUSED: "false"}, parent) as run_id:
                        if stale:
                            tracker.set_tags(run_id, {TAG_RESUMED: ",".join(stale)})
                        if stale and resumable(phase_work_dir(cfg, phase, fingerprint)):
                            # the killed run's metrics and plots travel on: this run holds the whole history,
                            # each step once (what it logged after the checkpoint, this run logs again)
                            work_dir = phase_work_dir(cfg, phase, fingerprint)
                            tracker.copy_history(stale, run_id, keep=logged_before_resume_point(work_dir))
                            log.info(
                                "%s: resuming the work of killed run(s) %s from %s; their metric history "
                                "and artifacts are copied into run %s",
                                phase,
                                ",".join(stale),
                                phase_work_dir(cfg, phase, fingerprint),
                                run_id,
                            )
                        metrics = _train_phase(
                            cfg, tracker, run_id, phase, seed, fingerprint, init_uri, device
                        )
                    weights_run = run_id
            result.phase_runs[phase] = weights_run
            result.reused[phase] = found is not None
            if phase == "finetune":
                finetune_metrics = metrics
            upstream_fp, upstream_uri = fingerprint, f"runs:/{weights_run}/{CHECKPOINT_ARTIFACT}"
        # the final scores, as metrics of the pipeline run: the runs table of the MLflow UI sorts by them
        result.metrics = {k: v for k, v in metrics.items() if k.startswith(("test_", "val_")) and _finite(v)}
        tracker.log_metrics(parent, result.metrics)
        if "finetune" in result.phase_runs and info.is_main:  # models its fine-tuning (or the reused) logged
            result.models = tracker.logged_models(result.phase_runs["finetune"])
            tracker.link_models(parent, result.models.values())
    if result.models:  # once the pipeline run is FINISHED
        register_task_models(cfg, tracker, result, finetune_metrics)
    return result


def task_metric_keys(metrics, label: str, short: str) -> list[str]:
    """The final metrics of one fine-tuning task (``test_nrmse_c1``, ``challenge1_best_epoch``, ...)."""
    pattern = re.compile(rf"(^|_)({re.escape(short)}|{re.escape(label)})(_|$)")
    return [key for key in metrics if pattern.search(key)]


def log_task_models(ctx: PhaseContext, tracker: Tracker | RankZeroTracker, run_id: str, output) -> None:
    """Each fine-tuned task's model as an MLflow model of the fine-tuning run, named after the task (graph and
    weights without pickle, a signature, two test windows as input example: tracking/models.py).

    A model that cannot be logged (e.g. one ``torch.export`` cannot trace) is reported and skipped: the run
    keeps its checkpoint, and its tag ``eegphase.model_error.<task>`` says why.
    """
    cfg = ctx.cfg
    for key, task in ctx.phase_cfg.tasks.items():
        label, short = finetune.task_names(key, task)
        metadata = {
            "task": key,
            "kind": str(task.kind),
            "target": str(task.target),
            "input": "float32 windows (batch, channels, samples) in the units the model trained on",
            "sfreq": float(cfg.preprocess.sfreq),
            "input_scale_from_volts": float(cfg.preprocess.get("scale", 1.0)) * float(cfg.input_scale),
        }
        if f"classes/{label}" in output.files:
            metadata["classes"] = json.loads(Path(output.files[f"classes/{label}"]).read_text())
        try:
            model, example = finetune.final_model(ctx, key, task, output.files[f"checkpoints/{label}"])
            keys = task_metric_keys(output.metrics, label, short)
            tracker.log_model(run_id, model, label, example, keys, metadata)
        except Exception as exc:  # noqa: BLE001 - training is done; a model that cannot be logged must not undo it
            log.warning("finetune: the %s model was not logged as an MLflow model: %s", label, exc)
            tracker.set_tags(run_id, {f"eegphase.model_error.{label}": f"{type(exc).__name__}: {exc}"[:5000]})


def register_task_models(
    cfg: DictConfig, tracker: Tracker | RankZeroTracker, result: PipelineResult, metrics: dict[str, float]
) -> None:
    """Register the models of the tasks ``tracking.registry.models`` names (task -> registered model) and keep
    ``tracking.registry.alias`` on each registered model's best version by the task's test score (NRMSE,
    lower is better; balanced accuracy for a classification task). ``metrics``: the fine-tuning run's."""
    registry = cfg.tracking.registry
    if not registry.enabled:
        return
    seed = effective_seed(cfg, "finetune")
    for key, task in cfg.phases.finetune.tasks.items():
        label, short = finetune.task_names(key, task)
        name = registry.models.get(key)
        if not name or label not in result.models:
            continue
        regression = str(task.kind) == "regression"
        score_metric = f"test_nrmse_{short}" if regression else f"test_balanced_accuracy_{short}"
        score = float(metrics.get(score_metric, math.nan))
        version, best = tracker.register_model(
            result.models[label],
            str(name),
            score,
            score_metric,
            lower_is_better=regression,
            alias=registry.alias,
            tags={
                TAG_PIPELINE: cfg.pipeline.name,
                "eegphase.pipeline_run": result.parent_run_id,
                "eegphase.seed": seed,
                "eegphase.task": key,
            },
            description=f"{cfg.pipeline.name} seed {seed}: {score_metric} = {score:.4f} "
            f"(pipeline run {result.parent_run_id})",
            model_description=f"eegphase's model of task {key} (target {task.target}); alias "
            f"'{registry.alias}': the version with the {'lowest' if regression else 'highest'} {score_metric}",
        )
        if version is None:
            continue
        result.registered[str(name)] = str(version.version)
        log.info(
            "registered %s version %s (%s %.4f); alias %s: version %s",
            name,
            version.version,
            score_metric,
            score,
            registry.alias,
            best.version if best is not None else "none (no finite score)",
        )


def phase_work_dir(cfg: DictConfig, phase: str, fingerprint: str) -> Path:
    """Where a phase of this fingerprint keeps its checkpoints while it trains (and resumes from)."""
    return Path(cfg.work_dir) / f"{phase}-{fingerprint}"


def resumable(work_dir: Path) -> bool:
    """Whether a phase's work folder holds checkpoints of an interrupted run to resume from."""
    return not (work_dir / COMPLETE_MARKER).exists() and any(work_dir.rglob("last.pt"))


def logged_before_resume_point(work_dir: Path) -> Callable[[Metric], bool]:
    """Which metric points of a killed run the resumed run keeps: those of its work up to the checkpoint it
    resumes from; the rest it logs again (a copy of them would show those steps twice).

    Stages run one after another, each with its own ``last.pt`` (and ``done.json`` when finished), so the
    newest of these files marks where the resume starts. A point is kept when it was logged no later than
    that file was written (finished stages, the current one up to its checkpoint), or when its step is at
    most the checkpoint's step (the epoch's metrics, logged just after the checkpoint at that step). A
    resumed stage logs again only steps after its checkpoint; a stage that had not checkpointed starts over.
    """
    markers = [*work_dir.rglob("last.pt"), *work_dir.rglob("done.json")]
    newest = max(markers, key=lambda path: path.stat().st_mtime_ns, default=None)
    if newest is None:
        return lambda metric: True
    written_ms = newest.stat().st_mtime_ns // 1_000_000
    step = -1  # a finished stage is the newest: the next one starts over
    if newest.name == "last.pt":
        step = int(torch.load(newest, map_location="cpu", weights_only=True, mmap=True)["step"])
    return lambda metric: metric.timestamp <= written_ms or metric.step <= step


def phase_lease(cfg: DictConfig, phase: str, fingerprint: str, main: bool):
    """Hold ``<work folder>.lock`` while training a phase: a second process of the same fingerprint waits
    for the first to finish (then reuses its run) instead of taking over its work folder. Rank 0 holds it
    for every rank of a DDP job."""
    if not main:
        return contextlib.nullcontext()
    work_dir = phase_work_dir(cfg, phase, fingerprint)
    path = work_dir.with_name(f"{work_dir.name}.lock")
    return file_lock(
        path,
        waiting=f"{phase}: another process is training fingerprint {fingerprint} in {work_dir} (it holds "
        f"{path}); waiting for it to finish",
    )


def _train_phase(
    cfg: DictConfig,
    tracker: Tracker | RankZeroTracker,
    run_id: str,
    phase: str,
    seed: int,
    fingerprint: str,
    init_uri: str | None,
    device: torch.device,
) -> dict[str, float]:
    work_dir = phase_work_dir(cfg, phase, fingerprint)
    complete = work_dir / COMPLETE_MARKER
    main = dist_info().is_main
    if (
        main and complete.exists()
    ):  # finished before but not reused (reuse=false, or its run is gone): start over
        shutil.rmtree(work_dir)
    barrier()
    work_dir.mkdir(parents=True, exist_ok=True)
    phase_cfg = OmegaConf.to_container(cfg.phases[phase], resolve=True)
    tracker.log_params(
        run_id, {"phase": phase_cfg, "model": OmegaConf.to_container(cfg.model, resolve=True), "seed": seed}
    )
    tracker.log_text(run_id, OmegaConf.to_yaml(cfg, resolve=True), "config.yaml")
    init_path = tracker.download(init_uri, work_dir / "init") if init_uri else None
    ctx = PhaseContext(
        cfg=cfg,
        name=phase,
        seed=seed,
        work_dir=work_dir,
        init_from=init_path,
        device=device,
        log_metrics=lambda metrics, step: tracker.log_metrics(run_id, metrics, step),
        log_figure=lambda figure, path: _log_figure(tracker, run_id, figure, path),
        log_dataset=lambda data, mode, split: log_windows(tracker, run_id, cfg, data, mode, split),
    )
    try:
        output = PHASE_RUNNERS[phase](ctx)
    except CheckpointError as err:  # weights that do not fit: say which init_from and which model
        if init_path is None or str(init_path) not in str(err):
            raise
        raise CheckpointError(f"{phase}: init_from={init_uri} into model={cfg.model.name}: {err}") from err
    for folder, path in output.files.items():
        tracker.log_artifact(run_id, path, folder)
    if "checkpoints" not in output.files:
        tracker.log_artifact(run_id, output.checkpoint, "checkpoints")
    tracker.log_metrics(run_id, {k: v for k, v in output.metrics.items() if _finite(v)})
    if phase == "finetune" and main and cfg.tracking.log_models:
        log_task_models(ctx, tracker, run_id, output)
    if main:
        complete.write_text(run_id)
    return output.metrics


def _log_figure(tracker: Tracker | RankZeroTracker, run_id: str, figure, path: str) -> None:
    import matplotlib.pyplot as plt

    tracker.log_figure(run_id, figure, path)
    plt.close(figure)


DATASET_CONTEXTS = {"train": "training", "val": "validation", "test": "testing"}


def log_windows(
    tracker: Tracker | RankZeroTracker, run_id: str, cfg: DictConfig, data: WindowDataset, mode: str, split
) -> None:
    """Log the windows table (one row per window, not the EEG) as a dataset input named ``<mode>-<split>``."""
    tracker.log_dataset(
        run_id,
        data.windows,
        name=f"{mode}-{split or 'all'}",
        context=DATASET_CONTEXTS.get(split, split or "all"),
        source=windows_path(cfg.cache_dir, mode).resolve(),
        targets=data.targets[0] if len(data.targets) == 1 else None,
    )


def _finite(value) -> bool:
    try:
        return math.isfinite(float(value))
    except (TypeError, ValueError):
        return False
