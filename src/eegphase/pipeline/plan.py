"""What a run config asks for (its phases, its data modes), checked at start-up before anything trains.

Structured-config schemas catch misspelled keys and wrong types; ``check_run_config`` catches names that do
not exist (a model, a window mode, a loss, a pair mode, a reader kind...) in seconds, instead of after hours of
pretraining when the phase that uses them starts. Each check uses the constructor or registry that the phase
itself uses, so the two cannot disagree. It also stops a pipeline whose phases need data the dataset does not
provide (``data.modes``: movies for the movie pair modes, challenge windows for the challenge tasks), and
``check_prepared_data`` (run right after the data is prepared, before the first phase) stops a fine-tuning task
whose target holds no values or whose windows are empty in a split, naming the task, the column and the split,
and a contrastive phase whose pairs cannot be formed in the train or val split (a dataset without movie
windows under a movie pair mode, a single recording label, fewer recordings than the batch size).
"""

from __future__ import annotations

import numpy as np
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import InterpolationToMissingValueError, MissingMandatoryValue

from eegphase.data.datasets import TARGETS, load_windows, subject_splits
from eegphase.data.preprocess import PreprocessConfig
from eegphase.data.sources import readers_from_config
from eegphase.data.splits import SPLITS, SplitConfig, attach_splits, labelled_subjects
from eegphase.data.windows import MODES, WindowConfig
from eegphase.engine.precision import PRECISIONS
from eegphase.models.predictor import TASK_KINDS
from eegphase.models.registry import check_encoder_spec
from eegphase.objectives.multitask import AuxiliaryObjective
from eegphase.objectives.pairs import MOVIE_PAIR_MODES, PAIR_MODES, pair_sampler, pair_source_mode
from eegphase.objectives.regression import CLASSIFICATION_LOSSES, REGRESSION_LOSSES, loss_by_name
from eegphase.phases.common import effective_trainer
from eegphase.phases.finetune import target_column
from eegphase.phases.pretrain import check_objective
from eegphase.pipeline.schema import PHASES, finetune_task_spec

# what a dataset without movie windows runs instead of a movie pair mode
NO_MOVIE_OPTIONS = (
    "choose contrastive=same_label (positives: windows of other subjects whose recordings share the label of "
    "data.label_pattern) or contrastive=same_recording (positives: two windows of the same recording), or drop "
    "the phase with contrastive=none (or +pipeline=no_contrastive / +pipeline=baseline)"
)
CLASS_WEIGHTS = ("balanced", "none")
READOUTS = ("refit", "sgd")


def pipeline_phases(cfg: DictConfig) -> list[str]:
    """The phases to run, in order; ``contrastive=none`` drops the contrastive phase."""
    if "pipeline" not in cfg or OmegaConf.is_missing(cfg, "pipeline"):
        raise ValueError("no pipeline chosen: add +pipeline=full (or no_contrastive, no_aux, baseline)")
    phases = list(cfg.pipeline.phases)
    unknown = [p for p in phases if p not in PHASES]
    if unknown:
        raise ValueError(f"pipeline.phases has unknown phase(s) {unknown}; known: {list(PHASES)}")
    if not cfg.contrastive.enabled:
        phases = [p for p in phases if p != "contrastive"]
    return phases


def needed_modes(cfg: DictConfig, phases: list[str]) -> list[str]:
    """The window modes (tables of the cache) the phases read."""
    modes = []
    if "pretrain" in phases:
        modes.append(str(cfg.phases.pretrain.mode))
    if "contrastive" in phases:
        modes.append(pair_source_mode(str(cfg.contrastive.pair_mode)))
    if "finetune" in phases:
        modes.extend(str(task.mode) for task in cfg.phases.finetune.tasks.values())
    return list(dict.fromkeys(modes))


def _plain(node) -> dict:
    return OmegaConf.to_container(node, resolve=True) if node is not None else {}


def _check_generated_sources(cfg: DictConfig) -> None:
    """``data.generate`` makes synthetic data for sources of the data config only (debug=smoke fills it for
    data=hbn and hbn_tuh alone, conf/debug/data/)."""
    generate = cfg.data.get("generate") or {}
    sources = cfg.data.get("sources") or {}
    foreign = [name for name in generate if name not in sources]
    if foreign:
        data = cfg.data.get("name", "?")
        raise ValueError(
            f"data.generate makes synthetic {foreign} data but data={data} has no such source "
            f"(data.sources: {list(sources)}): remove those entries (~data.generate.<source>)"
        )


def _check_available_modes(cfg: DictConfig, phases: list[str]) -> None:
    """Each phase and task reads a window mode the dataset provides (``data.modes``)."""
    available = cfg.data.get("modes")
    if available is None:
        return
    available = [str(m) for m in available]
    data = f"data={cfg.data.get('name', '?')} (data.modes={available})"
    if "pretrain" in phases and str(cfg.phases.pretrain.mode) not in available:
        raise ValueError(
            f"phases.pretrain.mode={cfg.phases.pretrain.mode!r} is not provided by {data}; "
            "choose one of those modes or a pipeline without pretraining (+pipeline=baseline)"
        )
    if "contrastive" in phases:
        pair_mode = str(cfg.contrastive.pair_mode)
        mode = pair_source_mode(pair_mode)
        if mode not in available and pair_mode in MOVIE_PAIR_MODES:
            raise ValueError(
                f"contrastive.pair_mode={pair_mode} pairs movie windows (mode 'movies') and the dataset has no "
                f"movie windows: {data} does not provide them; {NO_MOVIE_OPTIONS}"
            )
        if mode not in available:
            raise ValueError(
                f"contrastive.pair_mode={pair_mode} reads the windows of mode {mode!r}, which {data} does not "
                "provide: add contrastive=none (or use +pipeline=no_contrastive / +pipeline=baseline)"
            )
    if "finetune" in phases:
        for name, task in cfg.phases.finetune.tasks.items():
            if str(task.mode) not in available:
                raise ValueError(
                    f"fine-tuning task {name!r} reads mode {task.mode!r}, which {data} does not provide: "
                    "choose tasks=recording_label (needs data.label_pattern) or tasks=subject_column "
                    "tasks.column=<a column of the subject table>, or set its mode "
                    f"(phases.finetune.tasks.{name}.mode)"
                )


def _check_task(name: str, task) -> None:
    try:
        task.target, task.mode, task.get("name")
    except (MissingMandatoryValue, InterpolationToMissingValueError) as exc:
        hint = "; tasks=subject_column needs tasks.column=<a column of the subject table>"
        hint = hint if "tasks." in exc.msg else ""
        raise ValueError(
            f"phases.finetune.tasks.{name}: a required value is not set ({exc.msg}){hint}"
        ) from exc
    if task.kind not in TASK_KINDS:
        raise ValueError(f"phases.finetune.tasks.{name}.kind={task.kind!r}; choose one of {TASK_KINDS}")
    if task.loss is None:
        return
    try:
        loss_by_name(str(task.loss))
    except (KeyError, ValueError) as exc:
        raise ValueError(f"phases.finetune.tasks.{name}.loss: {exc}") from exc
    fitting = CLASSIFICATION_LOSSES if task.kind == "classification" else REGRESSION_LOSSES
    if str(task.loss).lower() not in fitting:
        raise ValueError(
            f"phases.finetune.tasks.{name}.loss={task.loss!r} does not fit kind={task.kind}; choose one of "
            f"{fitting}"
        )


def check_run_config(cfg: DictConfig) -> list[str]:
    """Raise on the first name in ``cfg`` that does not exist (naming its key); returns the phases to run."""
    phases = pipeline_phases(cfg)
    _check_generated_sources(cfg)
    try:
        readers_from_config(_plain(cfg.data))  # readers open no file until asked to list recordings
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"data ({cfg.data.get('name', '?')}): {exc}") from exc
    PreprocessConfig.from_mapping(_plain(cfg.preprocess))
    WindowConfig.from_mapping(_plain(cfg.windows))
    SplitConfig.from_mapping(_plain(cfg.split))
    if "contrastive" in phases and cfg.contrastive.pair_mode not in PAIR_MODES:  # before needed_modes uses it
        raise ValueError(f"contrastive.pair_mode={cfg.contrastive.pair_mode!r}; choose one of {PAIR_MODES}")
    modes = needed_modes(cfg, phases)
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ValueError(f"unknown window mode(s) {unknown} in phases.*.mode/tasks; known: {list(MODES)}")
    try:
        check_encoder_spec(_plain(cfg.model.encoder))
    except ValueError as exc:
        raise ValueError(f"model: {exc}") from exc
    for phase in phases:
        precision = effective_trainer(cfg, phase)["precision"]
        if precision not in PRECISIONS:
            raise ValueError(
                f"phases.{phase}.trainer.precision={precision!r} (trainer.precision unless the phase overrides "
                f"it); choose one of {PRECISIONS}"
            )
    if "pretrain" in phases:
        pretrain = cfg.phases.pretrain
        check_objective(pretrain.objective, str(cfg.model.name))
        AuxiliaryObjective(_plain(cfg.aux_task.tasks), TARGETS[str(pretrain.mode)])
    if "finetune" in phases:
        tasks = cfg.phases.finetune.tasks
        if not tasks:
            raise ValueError("phases.finetune.tasks is empty: name at least one task (e.g. tasks=challenges)")
        for name in list(tasks):
            tasks[name] = finetune_task_spec(name, tasks[name])
            _check_task(name, tasks[name])
        if cfg.phases.finetune.class_weights not in CLASS_WEIGHTS:
            raise ValueError(
                f"phases.finetune.class_weights={cfg.phases.finetune.class_weights!r}; choose one of "
                f"{CLASS_WEIGHTS}"
            )
        if cfg.phases.finetune.readout not in READOUTS:
            raise ValueError(
                f"phases.finetune.readout={cfg.phases.finetune.readout!r}; choose one of {READOUTS}"
            )
        count = cfg.phases.finetune.labelled_subjects
        if count is not None and count < 1:
            raise ValueError(f"phases.finetune.labelled_subjects={count}; choose 1 or more, or null (all)")
    _check_available_modes(cfg, phases)
    return phases


def _check_contrastive_pairs(cfg: DictConfig, splits) -> None:
    """The pair sampler the contrastive phase builds, built here on its train and val windows: a dataset
    without movie windows, a single label or too few recordings for the batch size fail before pretraining."""
    pair_mode = str(cfg.contrastive.pair_mode)
    mode = pair_source_mode(pair_mode)
    windows = attach_splits(load_windows(cfg.cache_dir, mode), splits)
    batch_size = int(cfg.phases.contrastive.batch_size)
    for split in ("train", "val"):
        part = windows[windows["split"] == split].reset_index(drop=True)
        what = f"the contrastive phase (contrastive.pair_mode={pair_mode}, {split} split, mode {mode!r})"
        if pair_mode in MOVIE_PAIR_MODES and part.empty:
            raise ValueError(
                f"{what}: the dataset has no movie windows (the {mode} windows table holds none for this split: "
                f"no recording of a movie task with video_start events); {NO_MOVIE_OPTIONS}"
            )
        try:
            len(pair_sampler(part, batch_size, pair_mode))  # plans the first epoch, as the phase will
        except (KeyError, ValueError) as exc:
            hint = ""
            if pair_mode in MOVIE_PAIR_MODES and "no window has a positive" in str(exc):
                hint = f"; the dataset has no movie windows watched by two subjects: {NO_MOVIE_OPTIONS}"
            elif "batch" in str(exc):
                hint = "; lower phases.contrastive.batch_size or change split.fractions"
            raise ValueError(f"{what}: {exc.args[0]}{hint}") from exc


def _check_labelled_subset(cfg: DictConfig, what: str, task, column: str, train) -> None:
    """``phases.finetune.labelled_subjects``: the train split has that many subjects with a value, and the ones
    fine-tuning will draw hold two classes or more (classification)."""
    count = cfg.phases.finetune.labelled_subjects
    if count is None:
        return
    seed = int(cfg.seed) if cfg.seed_all_phases else int(cfg.phases.finetune.seed)  # fine-tuning's seed
    classes = task.kind == "classification"
    try:
        chosen = labelled_subjects(train, column, int(count), seed, classes)
    except ValueError as exc:
        raise ValueError(f"{what}: {exc}") from exc
    if classes and train.loc[train["subject"].astype(str).isin(chosen), column].nunique() < 2:
        raise ValueError(
            f"{what}: phases.finetune.labelled_subjects={count} draws {chosen}, who hold one class of "
            f"{column!r}; label more subjects"
        )


def check_prepared_data(cfg: DictConfig, phases: list[str]) -> None:
    """After the data is prepared, before any phase: every fine-tuning task's target column exists and holds
    values, every split has windows with a value, a classification target is integer classes with at least
    two in training, and a regression target varies in val and test (else NRMSE is undefined); the contrastive
    phase's pairs can be formed in its train and val splits."""
    if "finetune" not in phases and "contrastive" not in phases:
        return
    split_cfg = SplitConfig.from_mapping(_plain(cfg.split))
    splits = subject_splits(cfg.cache_dir, split_cfg)
    if "contrastive" in phases:
        _check_contrastive_pairs(cfg, splits)
    if "finetune" not in phases:
        return
    for name, task in cfg.phases.finetune.tasks.items():
        what = f"fine-tuning task {name!r} (mode {task.mode})"
        windows = load_windows(cfg.cache_dir, str(task.mode))
        if windows.empty:
            raise ValueError(f"{what}: the {task.mode} windows table is empty")
        try:
            column = target_column(task, windows.columns)
        except KeyError as exc:
            raise ValueError(f"{what}: {exc.args[0]}") from exc
        values = windows[column]
        if not values.notna().any():
            hint = " (set data.label_pattern to extract a label)" if column == "label" else ""
            raise ValueError(
                f"{what}: target column {column!r} holds no values in any of its {len(windows)} windows{hint}"
            )
        windows = attach_splits(windows, splits)
        known = windows[windows[column].notna()]
        counts = {split: int((known["split"] == split).sum()) for split in SPLITS}
        for split in SPLITS:
            if counts[split] == 0:
                raise ValueError(
                    f"{what}: no windows with a value of {column!r} in the {split} split (windows per split: "
                    f"{counts}; subjects with a value: {known['subject'].nunique()}); change split.fractions "
                    "or add subjects"
                )
        if task.kind == "classification":
            codes = known[column].to_numpy(float)
            if (codes < 0).any() or (codes != np.round(codes)).any():
                raise ValueError(
                    f"{what}: classification target {column!r} must hold class numbers 0, 1, ... (or text); "
                    f"it holds e.g. {codes[(codes < 0) | (codes != np.round(codes))][:3].tolist()}"
                )
            train_classes = known.loc[known["split"] == "train", column].nunique()
            if train_classes < 2:
                raise ValueError(
                    f"{what}: the train split holds {train_classes} class of {column!r}; need 2+"
                )
        else:
            for split in ("val", "test"):
                part = known.loc[known["split"] == split, column]
                if part.nunique() < 2:
                    raise ValueError(
                        f"{what}: {column!r} takes one value in the {split} split ({part.iloc[0]!r}, "
                        f"{known.loc[known['split'] == split, 'subject'].nunique()} subject(s)): NRMSE is "
                        "undefined; change split.fractions or add subjects"
                    )
        _check_labelled_subset(cfg, what, task, column, known[known["split"] == "train"])
