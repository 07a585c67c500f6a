"""Supervised fine-tuning, one model per task (challenge 1, challenge 2, or a user's own targets).

With upstream weights the encoder starts from them and the head first learns alone on the frozen encoder for
``freeze_epochs`` epochs; then the whole model trains end to end for ``epochs`` epochs, on a schedule of its
own, exactly as long as a from-scratch model trains (a fair comparison). An initialised encoder fine-tunes with
layer-wise lr decay when its model sets one (``model.finetune_layer_decay``: the paper-sized LaBraMs); a
from-scratch one without (``layer_decay_from_scratch``).
The best epoch by validation loss, its last head layer refitted in closed form when that scores better on
validation (``readout: refit``, see ``phases.readout``), is scored on the val and test subjects: NRMSE per
window and per subject (regression), balanced accuracy per window, recording and subject and AUROC
(classification), and the overall score 0.3 * C1 + 0.7 * C2. Beside each task's scores, in the same run:
a trivial predictor (the training mean; the majority class), the share of the most predicted class, and a
band-power linear reference fitted on the same training split (``reference``). Classification weighs the
cross-entropy by the training split's class counts (``class_weights: balanced``).
``labelled_subjects: K`` keeps K training subjects' windows (``data.splits.labelled_subjects``), so only their
labels reach training, the readout refit, the reference and the trivial predictor; ``epochs: 0`` skips the end-to-end
stage (with ``freeze_epochs: 0`` and ``readout: refit``, a linear probe of the frozen encoder: the refitted
layer is kept whatever its validation score, as no trained layer competes with it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import re
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader

from eegphase.data.datasets import WindowDataset, load_windows
from eegphase.data.readers.subjects import find_column
from eegphase.data.splits import labelled_subjects
from eegphase.data.windows import NAME_SUFFIX
from eegphase.engine.checkpoint import save_checkpoint
from eegphase.engine.loop import StepFn, Trainer, TrainerConfig, move_to_device
from eegphase.engine.optim import head_side_parameter_names
from eegphase.engine.precision import make_precision
from eegphase.engine.seeding import seed_everything
from eegphase.engine.transfer import freeze_unused_mask_token, load_encoder_weights, set_requires_grad
from eegphase.models.predictor import Predictor, build_predictor
from eegphase.objectives.metrics import (
    auroc,
    balanced_accuracy,
    challenge_score,
    constant_within,
    grouped_balanced_accuracy,
    grouped_nrmse,
    nrmse,
    predicted_class_share,
)
from eegphase.objectives.reference import (
    fit_logistic_reference,
    fit_ridge_reference,
    spread_subset,
    window_features,
)
from eegphase.objectives.regression import (
    CLASSIFICATION_LOSSES,
    balanced_class_weights,
    loss_by_name,
    masked_cross_entropy,
)
from eegphase.phases.common import (
    PhaseContext,
    PhaseOutput,
    dataset,
    learning_curves,
    loader,
    mark_stage_done,
    resume_point,
    stage_done,
)
from eegphase.phases.common import trainer_config as make_trainer_config
from eegphase.phases.readout import Autocast, Readout, refit_readout

log = logging.getLogger(__name__)
CHALLENGE_TASKS = {"challenge1": "c1", "challenge2": "c2"}
GROUP_LEVELS = (("recording", "key"), ("subject", "subject"))  # metric suffix, windows column
READOUT_CHECKPOINT = "readout/best.pt"  # the best epoch with its refitted last head layer (readout: refit)
SCORING_BATCH = 256  # forward passes only: on CPU, batches of 256 encode about 1.7x faster than of 32
LABELLED_FILE = "labelled_subjects.json"  # in a task's folder: the training subjects whose labels it read


def metric_name(text: str) -> str:
    """A column or task name made safe for metric names: lowercase, non-alphanumerics to ``_``."""
    return re.sub(r"[^0-9a-z]+", "_", str(text).strip().lower()).strip("_") or "task"


def task_names(key: str, task) -> tuple[str, str]:
    """(name of the task's folder and checkpoints, name in its metrics): ``challenge1`` -> (challenge1, c1);
    a task with ``name: Age`` -> (age, age)."""
    name = task.get("name")
    label = metric_name(name) if name else key
    return label, CHALLENGE_TASKS.get(key, label if name else metric_name(key))


def target_column(task, columns) -> str:
    """The windows-table column a task's ``target`` names (subject-table headers in any case: Age -> age)."""
    found = find_column(str(task.target), columns)
    if found is None:
        shown = [c for c in columns if not str(c).endswith(NAME_SUFFIX)]
        raise KeyError(
            f"target column {str(task.target)!r} is not in the {task.mode} windows table; it has {shown}"
        )
    return found


def _with_windows(data: WindowDataset, windows, **changes) -> WindowDataset:
    """The same kind of dataset over other rows (or with another crop/scale)."""
    options = {
        "crop_samples": data.crop_samples,
        "random_crop": data.random_crop,
        "layout": data.layout,
        "scale": data.scale,
        "seed": data.seed,
        **changes,
    }
    return WindowDataset(data.cache_dir, windows, data.targets, **options)


def _labelled(data: WindowDataset) -> WindowDataset:
    """Only the windows whose target is known (a subject without the column, a recording without a label)."""
    known = data.windows[data.targets[0]].notna()
    return data if known.all() else _with_windows(data, data.windows[known])


def _labelled_subset(ctx: PhaseContext, train: WindowDataset, kind: str, directory: Path) -> WindowDataset:
    """``labelled_subjects: K``: the training windows of the K training subjects drawn by the seed
    (``data.splits.labelled_subjects``; their names in the task's ``labelled_subjects.json``); null: ``train``."""
    count = ctx.phase_cfg.get("labelled_subjects")
    if count is None:
        return train
    target = train.targets[0]
    chosen = labelled_subjects(train.windows, target, int(count), ctx.seed, kind == "classification")
    (directory / LABELLED_FILE).write_text(json.dumps(chosen, indent=1))
    subset = _with_windows(train, train.windows[train.windows["subject"].astype(str).isin(chosen)])
    if kind == "classification" and subset.windows[target].nunique() < 2:
        raise ValueError(
            f"phases.finetune.labelled_subjects={count}: the drawn training subjects {chosen} hold one class of "
            f"{target!r}; label more subjects"
        )
    return subset


@torch.no_grad()
def predict(
    model: nn.Module, data_loader, device: torch.device, autocast: Autocast = contextlib.nullcontext
) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and targets over a loader, in order (eval mode). The encoder runs under ``autocast`` (the
    training's precision: bf16 encodes 1.3-1.5x faster on a CPU with bf16 matmul), the head in float32 so that
    predictions keep their resolution."""
    model.eval()
    outputs, targets = [], []
    for batch in data_loader:
        batch = move_to_device(batch, device)
        with autocast():
            encoded = model.encoder(batch["x"])
        outputs.append(model.head(encoded.float()).float().cpu())
        targets.append(batch["y"][:, 0].float().cpu())
    return torch.cat(outputs).numpy(), torch.cat(targets).numpy()


def _scatter(y_true: np.ndarray, y_pred: np.ndarray, title: str):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(4.5, 4.5))
    ax.scatter(y_true, y_pred, s=6, alpha=0.5)
    low, high = float(np.nanmin(y_true)), float(np.nanmax(y_true))
    ax.plot([low, high], [low, high], "k--", lw=1)
    ax.set_xlabel("true")
    ax.set_ylabel("predicted")
    ax.set_title(title)
    figure.tight_layout()
    return figure


@dataclasses.dataclass
class TaskSetup:
    """One task as ``build_task`` makes it: what ``fit_task`` trains and ``score_task`` scores."""

    label: str  # the task's folder and checkpoint name
    short: str  # the task's name in metrics
    kind: str  # regression | classification (pipeline.plan.check_run_config checked it)
    target: str  # the windows-table column
    directory: Path
    splits: dict[str, WindowDataset]  # train, val, test: the windows whose target is known
    train: DataLoader
    val: DataLoader  # monitors training (max_eval_batches); scored in full through full_val
    full_val: DataLoader
    test: DataLoader
    y_train: np.ndarray
    n_outputs: int
    model: Predictor
    step: StepFn
    metrics: dict[str, float]  # what building reports (class weights, keys missing from init_from)


def train_task(ctx: PhaseContext, task_name: str, task) -> tuple[dict[str, float], Path]:
    """Fine-tune and score one task; returns its metrics and best checkpoint. A task that finished before an
    interruption of a later one is not trained again."""
    directory = ctx.work_dir / task_names(task_name, task)[0]
    finished = stage_done(directory)
    if finished is not None:  # finished before an interruption of a later task
        refitted = directory / READOUT_CHECKPOINT
        return finished, refitted if refitted.exists() else directory / "best.pt"
    setup = build_task(ctx, task_name, task)
    checkpoint, best_epoch = fit_task(ctx, setup)
    return score_task(ctx, setup, checkpoint, best_epoch)


def build_task(ctx: PhaseContext, task_name: str, task) -> TaskSetup:
    """The task's labelled splits and loaders, and its model and loss, ready to train: the head starts at the
    trivial predictor, the encoder at ``init_from`` when there is one."""
    phase = ctx.phase_cfg
    label, short = task_names(task_name, task)
    directory = ctx.work_dir / label
    directory.mkdir(parents=True, exist_ok=True)
    kind = str(task.kind)  # regression | classification (pipeline.plan.check_run_config checked it)
    target = target_column(task, load_windows(ctx.cache_dir, str(task.mode)).columns)
    targets = [target]
    crop = task.crop_s
    subset = phase.get("labelled_subjects") is not None
    # labelled_subjects: K -- the training windows are logged once cut down to the K subjects'
    train_ctx = dataclasses.replace(ctx, log_dataset=lambda data, mode, split: None) if subset else ctx
    splits = {
        split: _labelled(
            dataset(train_ctx if split == "train" else ctx, task.mode, split, targets=targets, crop_s=crop)
        )
        for split in ("train", "val", "test")
    }
    if subset:  # only these subjects' labels reach training, the readout refit and the reference
        splits["train"] = _labelled_subset(ctx, splits["train"], kind, directory)
        ctx.log_dataset(splits["train"], str(task.mode), "train")
    train_data, val_data, test_data = splits["train"], splits["val"], splits["test"]
    batch = int(phase.batch_size)
    train = loader(ctx, train_data, batch, True, phase.max_batches_per_epoch)
    val = loader(ctx, val_data, batch, False, phase.max_eval_batches)
    full_val, test = (loader(ctx, data, SCORING_BATCH, False) for data in (val_data, test_data))

    seed_everything(ctx.seed)
    y_train = train_data.windows[target].to_numpy(float)
    metrics: dict[str, float] = {f"{short}_labelled_subjects": float(train_data.windows["subject"].nunique())}
    if kind == "classification":
        n_outputs = max(int(np.nanmax(d.windows[target].to_numpy(float))) for d in splits.values()) + 1
        classes = class_names(splits.values(), target, n_outputs)
        (directory / "classes.json").write_text(json.dumps(classes, indent=1))
        counts = np.bincount(y_train.astype(int), minlength=n_outputs)
        log.info("task %s: classes %s; training windows per class %s", label, classes, counts.tolist())
        loss_name = str(task.loss or "ce")
        weight = balanced_class_weights(y_train, n_outputs) if phase.class_weights == "balanced" else None
        if weight is not None:
            metrics.update({f"{short}_class_weight_{i}": float(w) for i, w in enumerate(weight)})
    else:
        n_outputs, loss_name, weight = 1, str(task.loss or "mse"), None
    model = build_predictor(ctx.model_cfg, n_outputs=n_outputs, task=kind)
    # Start exactly at the trivial predictor (the training mean; equal class scores), so that the first
    # steps learn signal instead of unlearning the random output of a fresh head.
    nn.init.zeros_(model.head.net[-1].weight)
    nn.init.zeros_(model.head.net[-1].bias)
    if kind == "regression":
        nn.init.constant_(model.head.net[-1].bias, float(np.nanmean(y_train)))
    if ctx.init_from is not None:
        report = load_encoder_weights(model.encoder, ctx.init_from, prefix="encoder.")
        metrics[f"{label}_init_missing_keys"] = float(len(report.missing))
    freeze_unused_mask_token(model.encoder)
    if kind == "classification" and loss_name.lower() in CLASSIFICATION_LOSSES:

        def loss_fn(pred, y):
            return masked_cross_entropy(pred, y, weight)
    else:
        loss_fn = loss_by_name(loss_name)

    def step(model, batch):
        out = model(batch["x"])
        pred = out.squeeze(-1) if kind == "regression" else out
        return loss_fn(pred, batch["y"][:, 0])

    return TaskSetup(
        label=label,
        short=short,
        kind=kind,
        target=target,
        directory=directory,
        splits=splits,
        train=train,
        val=val,
        full_val=full_val,
        test=test,
        y_train=y_train,
        n_outputs=n_outputs,
        model=model,
        step=step,
        metrics=metrics,
    )


def fit_task(ctx: PhaseContext, setup: TaskSetup) -> tuple[Path, int | None]:
    """Train the task's model (the head alone first on an initialised encoder, then end to end), leave it at
    its best epoch by validation loss, and return that epoch's checkpoint and number."""
    phase = ctx.phase_cfg
    model, label = setup.model, setup.label
    head_epochs = int(phase.freeze_epochs) if ctx.init_from is not None else 0
    if head_epochs > 0:
        fit_head_only(
            ctx, model, setup.step, setup.train, setup.val, head_epochs, setup.directory / "head", label
        )
    if int(phase.epochs) == 0:
        # no end-to-end stage: the encoder as it came (a frozen probe when readout: refit)
        checkpoint = setup.directory / "best.pt"
        if ctx.is_main:
            save_checkpoint({"model": model.state_dict()}, checkpoint)
        return checkpoint, None
    # End to end: the same number of epochs (and steps) whether the encoder starts from scratch or not,
    # on a schedule of its own (warmup, then cosine over exactly these epochs).
    trainer = Trainer(
        model,
        setup.step,
        end_to_end_trainer_config(ctx, setup.directory),
        on_log=ctx.prefixed_log(f"{label}/"),
        device=ctx.device,
    )
    result = trainer.fit(
        setup.train, setup.val, epochs=int(phase.epochs), resume_from=resume_point(setup.directory)
    )
    ctx.log_figure(learning_curves(result.history, f"finetune {label}"), f"plots/{label}_curves.png")

    best = torch.load(trainer.best_checkpoint, map_location="cpu", weights_only=True)["model"]
    model.load_state_dict(best)
    return trainer.best_checkpoint, result.best_epoch


def score_task(
    ctx: PhaseContext, setup: TaskSetup, checkpoint: Path, best_epoch: int | None
) -> tuple[dict[str, float], Path]:
    """Score the fitted model (its last head layer refitted when that scores better on validation) on the val
    and test subjects beside the trivial predictor and the band-power reference; log the test scatter and
    mark the task done. Returns the task's metrics and the checkpoint of the model scored."""
    phase = ctx.phase_cfg
    model, kind, short, label = setup.model, setup.kind, setup.short, setup.label
    val_data, test_data = setup.splits["val"], setup.splits["test"]
    metrics = dict(setup.metrics)
    autocast = make_precision(str(ctx.trainer_cfg["precision"]), ctx.device).autocast
    scored = {}  # split -> (outputs, targets) already computed
    if phase.readout == "refit":
        # no end-to-end or head-only epoch: the head's last layer is its zero init, nothing trained to prefer
        probe = int(phase.epochs) == 0 and (ctx.init_from is None or int(phase.freeze_epochs) == 0)
        readout = _refit_readout(ctx, model, kind, short, setup.splits, setup.n_outputs, autocast, probe)
        metrics.update(readout.scores)
        if readout.kept:
            checkpoint = setup.directory / READOUT_CHECKPOINT
            checkpoint.parent.mkdir(parents=True, exist_ok=True)
            if ctx.is_main:
                save_checkpoint({"model": model.state_dict()}, checkpoint)
        if len(readout.val_outputs) == len(val_data):  # the refit read every validation window
            scored["val"] = readout.val_outputs, val_data.windows[setup.target].to_numpy(float)
    for split, data, data_loader in (("val", val_data, setup.full_val), ("test", test_data, setup.test)):
        # how many subjects a score rests on (a comparison between pipelines reports it)
        metrics[f"{split}_subjects_{short}"] = float(data.windows["subject"].nunique())
        if split in scored:
            out, true = scored[split]
        else:
            out, true = predict(model.to(ctx.device), data_loader, ctx.device, autocast)
        if kind == "regression":
            metrics.update(
                regression_scores(f"{split}_nrmse_{short}", true, out[:, 0], data.windows, setup.y_train)
            )
        else:
            metrics.update(classification_scores(split, short, true, out, data.windows, setup.y_train))
        if split == "test" and kind == "regression":
            ctx.log_figure(_scatter(true, out[:, 0], f"{label}: test predictions"), f"plots/{label}_test.png")
    if phase.get("reference", True):
        metrics.update(
            reference_scores(kind, short, setup.splits, setup.n_outputs, phase.get("reference_max_windows"))
        )
    metrics[f"{label}_best_epoch"] = float(best_epoch or 0)
    mark_stage_done(ctx, setup.directory, metrics)
    return metrics, checkpoint


def end_to_end_trainer_config(ctx: PhaseContext, directory: Path) -> TrainerConfig:
    """The end-to-end stage's engine config. Layer decay keeps what pretraining put in the lower blocks; a
    from-scratch encoder has nothing to keep, and decayed rates starve its patch embedding, so it trains
    without unless ``layer_decay_from_scratch`` (see conf/phase/finetune.yaml for what that cost)."""
    decay = ctx.init_from is not None or bool(ctx.phase_cfg.layer_decay_from_scratch)
    return make_trainer_config(ctx, directory, use_layer_decay=decay)


def _refit_readout(
    ctx: PhaseContext,
    model: nn.Module,
    kind: str,
    short: str,
    splits: dict,
    n_outputs: int,
    autocast: Autocast,
    always: bool = False,
) -> Readout:
    """``readout: refit``: the last head layer refitted in closed form on centred crops of at most
    ``readout_max_windows`` training windows (penalty tuned on as many validation windows), kept in ``model``
    when it scored better on validation than the trained layer, or ``always``."""
    limit = ctx.phase_cfg.readout_max_windows

    def centred(data: WindowDataset):
        rows = spread_subset(len(data), limit)
        return loader(
            ctx, _with_windows(data, data.windows.iloc[rows], random_crop=False), SCORING_BATCH, False
        )

    return refit_readout(
        model.to(ctx.device),
        kind,
        short,
        centred(splits["train"]),
        centred(splits["val"]),
        n_outputs,
        ctx.device,
        autocast,
        always,
    )


def class_names(datasets, target: str, n_classes: int) -> dict[str, str]:
    """Class code -> name, from the ``<target>_name`` column the windows carry (the code itself if none)."""
    names = {str(i): str(i) for i in range(n_classes)}
    for data in datasets:
        if target + NAME_SUFFIX in data.windows:
            pairs = data.windows[[target, target + NAME_SUFFIX]].dropna().drop_duplicates()
            names.update({str(int(code)): str(name) for code, name in pairs.itertuples(index=False)})
    return names


def regression_scores(prefix: str, true: np.ndarray, pred: np.ndarray, windows, y_train) -> dict[str, float]:
    """NRMSE per window, of subject means (``_subject``) and of the training mean (``_trivial``)."""
    subjects = windows["subject"].astype(str).to_numpy()
    return {
        prefix: _safe(nrmse, prefix, true, pred),
        f"{prefix}_subject": _safe(grouped_nrmse, f"{prefix}_subject", true, pred, subjects),
        f"{prefix}_trivial": _safe(nrmse, f"{prefix}_trivial", true, np.full_like(true, np.mean(y_train))),
    }


def classification_scores(split: str, short: str, true, logits, windows, y_train) -> dict[str, float]:
    """Balanced accuracy per window and from mean window probabilities per recording and per subject (where
    the label is the same across the group's windows), AUROC, the majority class's balanced accuracy
    (``_trivial``) and the share of the most predicted class."""
    proba = torch.softmax(torch.as_tensor(logits, dtype=torch.float64), dim=1).numpy()
    name = f"{split}_balanced_accuracy_{short}"
    scores = {
        name: balanced_accuracy(true, proba.argmax(axis=1)),
        f"{split}_auroc_{short}": auroc(true, proba),
    }
    for level, column in GROUP_LEVELS:
        groups = windows[column].astype(str).to_numpy()
        if constant_within(true, groups):
            scores[f"{name}_{level}"] = grouped_balanced_accuracy(true, proba, groups)
        else:
            log.info("%s_%s not reported: the label varies within a %s", name, level, level)
    majority = float(np.bincount(y_train.astype(int)).argmax())
    scores[f"{name}_trivial"] = balanced_accuracy(true, np.full_like(true, majority))
    scores[f"{split}_predicted_class_share_{short}"] = predicted_class_share(proba.argmax(axis=1))
    return scores


def reference_scores(kind: str, short: str, splits: dict, n_classes: int, max_windows) -> dict[str, float]:
    """Test score of the band-power linear reference fitted on the training windows (penalty tuned on val);
    NaN with a warning when it cannot be fitted (e.g. a validation target without spread)."""
    features = {
        split: window_features(
            _with_windows(data, data.windows, random_crop=False, scale=1.0),  # microvolts, centred crops
            max_windows=None if split == "test" else max_windows,
        )
        for split, data in splits.items()
    }
    x_test, y_test = features["test"]
    try:
        if kind == "regression":
            ridge = fit_ridge_reference(*features["train"], *features["val"])
            return {f"test_nrmse_{short}_reference": nrmse(y_test, ridge.predict(x_test))}
        logistic = fit_logistic_reference(*features["train"], *features["val"], n_classes=n_classes)
        pred = logistic.predict_proba(x_test).argmax(axis=1)
        return {f"test_balanced_accuracy_{short}_reference": balanced_accuracy(y_test, pred)}
    except ValueError as exc:
        log.warning("no band-power reference for %s: %s", short, exc)
        return {}


def _safe(metric, what: str, *args) -> float:
    try:
        return metric(*args)
    except ValueError as exc:  # e.g. one test subject: std(y) = 0
        log.warning("cannot compute %s: %s", what, exc)
        return math.nan


def freeze_encoder_body(model: nn.Module) -> None:
    """Freeze ``model.encoder`` except its head-side parameters (``head_parameter_names``: the pooling the
    head reads through), so that a head-only stage trains what sits between the blocks and the head."""
    set_requires_grad(model.encoder, False)
    parameters = dict(model.named_parameters())
    for name in head_side_parameter_names(model):
        parameters[name].requires_grad_(True)


def fit_head_only(
    ctx: PhaseContext, model: nn.Module, step, train, val, epochs: int, directory: Path, task_name: str
) -> None:
    """Train the head on a frozen, initialised encoder (its own warmup + cosine), leaving ``model`` at the
    stage's last weights; a finished stage is not retrained when a later one was interrupted. The encoder's
    head-side parameters (its learned pooling, which masked modelling never trains) train with the head."""
    directory.mkdir(parents=True, exist_ok=True)
    freeze_encoder_body(model)
    if stage_done(directory) is None:
        trainer = Trainer(
            model,
            step,
            # frozen encoder weights get no gradient; DDP must expect that
            make_trainer_config(ctx, directory, monitor=None, ddp_find_unused_parameters=True),
            on_log=ctx.prefixed_log(f"{task_name}/head/"),
            device=ctx.device,
        )
        trainer.fit(train, val, epochs=epochs, resume_from=resume_point(directory))
        mark_stage_done(ctx, directory, {"epochs": epochs})
    state = torch.load(directory / "last.pt", map_location="cpu", weights_only=True)["model"]
    model.load_state_dict(state)
    set_requires_grad(model.encoder, True)
    freeze_unused_mask_token(model.encoder)


def final_model(ctx: PhaseContext, task_name: str, task, checkpoint: Path) -> tuple[nn.Module, torch.Tensor]:
    """A task's model as :func:`run` scored and handed it on (``checkpoint``; eval mode, CPU) and two of its
    test windows as the model takes them: what the runner logs as the task's MLflow model."""
    label, _ = task_names(task_name, task)
    kind = str(task.kind)
    classes = ctx.work_dir / label / "classes.json"  # class code -> name (classification)
    n_outputs = 1 if kind == "regression" else len(json.loads(classes.read_text()))
    model = build_predictor(ctx.model_cfg, n_outputs=n_outputs, task=kind)
    model.load_state_dict(torch.load(checkpoint, map_location="cpu", weights_only=True)["model"])
    target = target_column(task, load_windows(ctx.cache_dir, str(task.mode)).columns)
    quiet = dataclasses.replace(ctx, log_dataset=lambda data, mode, split: None)  # logged when it trained
    test = dataset(quiet, task.mode, "test", targets=[target], crop_s=task.crop_s)
    # two windows: an exported graph traced on a batch of one would only take batches of one
    return model.eval(), torch.stack([test[i % len(test)]["x"] for i in range(2)]).float()


def run(ctx: PhaseContext) -> PhaseOutput:
    tasks = ctx.phase_cfg.tasks  # at least one, each typed and checked (pipeline.plan.check_run_config)
    metrics: dict[str, float] = {}
    files: dict[str, Path] = {}
    checkpoint = None
    for name, task in tasks.items():
        task_metrics, best = train_task(ctx, name, task)
        metrics.update(task_metrics)
        label = task_names(name, task)[0]
        files[f"checkpoints/{label}"] = best
        classes = ctx.work_dir / label / "classes.json"  # class code -> name of a classification task
        if classes.exists():
            files[f"classes/{label}"] = classes
        labelled = ctx.work_dir / label / LABELLED_FILE  # labelled_subjects: K (the subjects drawn)
        if labelled.exists():
            files[f"labelled/{label}"] = labelled
        checkpoint = checkpoint or best
    for split in ("val", "test"):
        c1, c2 = metrics.get(f"{split}_nrmse_c1"), metrics.get(f"{split}_nrmse_c2")
        if c1 is not None and c2 is not None:
            metrics[f"{split}_score"] = (
                challenge_score(c1, c2) if not (math.isnan(c1) or math.isnan(c2)) else math.nan
            )
    return PhaseOutput(checkpoint=checkpoint, metrics=metrics, files=files)
