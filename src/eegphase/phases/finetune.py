"""Supervised fine-tuning, one model per task (challenge 1, challenge 2, or a user's own targets).

With upstream weights the encoder starts from them and the head first learns alone on the frozen encoder for
``freeze_epochs`` epochs; then the whole model trains end to end for ``epochs`` epochs, on a schedule of its
own, exactly as long as a from-scratch model trains (a fair comparison). LaBraM models fine-tune with
layer-wise lr decay (``model.finetune_layer_decay``). The best epoch by validation loss is scored on the test subjects:
NRMSE per challenge and the overall score 0.3 * C1 + 0.7 * C2.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

import numpy as np
import torch
from torch import nn

from eegphase.engine.loop import Trainer, move_to_device
from eegphase.engine.seeding import seed_everything
from eegphase.engine.transfer import freeze_unused_mask_token, load_encoder_weights, set_requires_grad
from eegphase.models.predictor import build_predictor
from eegphase.objectives.metrics import balanced_accuracy, challenge_score, nrmse
from eegphase.objectives.regression import loss_by_name
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

log = logging.getLogger(__name__)
CHALLENGE_TASKS = {"challenge1": "c1", "challenge2": "c2"}


@torch.no_grad()
def predict(model: nn.Module, data_loader, device: torch.device) -> tuple[np.ndarray, np.ndarray]:
    """Predictions and targets over a loader, in order (eval mode, fp32)."""
    model.eval()
    outputs, targets = [], []
    for batch in data_loader:
        batch = move_to_device(batch, device)
        outputs.append(model(batch["x"]).float().cpu())
        targets.append(batch["y"][:, 0].float().cpu())
    return torch.cat(outputs).numpy(), torch.cat(targets).numpy()


def _safe_nrmse(y_true: np.ndarray, y_pred: np.ndarray, what: str) -> float:
    try:
        return nrmse(y_true, y_pred)
    except ValueError as exc:  # e.g. one test subject: std(y) = 0
        log.warning("cannot compute NRMSE for %s: %s", what, exc)
        return math.nan


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


def train_task(ctx: PhaseContext, task_name: str, task) -> tuple[dict[str, float], Path]:
    """Fine-tune and score one task; returns its metrics and best checkpoint."""
    phase = ctx.phase_cfg
    directory = ctx.work_dir / task_name
    directory.mkdir(parents=True, exist_ok=True)
    finished = stage_done(directory)
    if finished is not None:  # finished before an interruption of a later task
        return finished, directory / "best.pt"
    kind = str(task.kind)
    targets = [str(task.target)]
    crop = task.crop_s
    train_data = dataset(ctx, task.mode, "train", targets=targets, crop_s=crop)
    val_data = dataset(ctx, task.mode, "val", targets=targets, crop_s=crop)
    test_data = dataset(ctx, task.mode, "test", targets=targets, crop_s=crop)
    batch = int(phase.batch_size)
    train = loader(ctx, train_data, batch, True, phase.max_batches_per_epoch)
    val = loader(
        ctx, val_data, batch, False, phase.max_eval_batches
    )  # monitors training; scored in full below
    full_val, test = loader(ctx, val_data, batch, False), loader(ctx, test_data, batch, False)

    seed_everything(ctx.seed)
    y_train = train_data.windows[targets[0]].to_numpy(float)
    if kind == "classification":
        n_outputs = int(np.nanmax(y_train)) + 1
    elif kind == "regression":
        n_outputs = 1
    else:
        raise ValueError(
            f"phases.finetune.tasks.{task_name}.kind must be regression or classification, got {kind!r}"
        )
    model = build_predictor(ctx.model_cfg, n_outputs=n_outputs, task=kind)
    if kind == "regression":
        nn.init.constant_(model.head.net[-1].bias, float(np.nanmean(y_train)))  # start at the mean predictor
    metrics: dict[str, float] = {}
    if ctx.init_from is not None:
        report = load_encoder_weights(model.encoder, ctx.init_from, prefix="encoder.")
        metrics[f"{task_name}_init_missing_keys"] = float(len(report.missing))
    freeze_unused_mask_token(model.encoder)
    loss_fn = loss_by_name(str(task.loss))

    def step(model, batch):
        out = model(batch["x"])
        pred = out.squeeze(-1) if kind == "regression" else out
        return loss_fn(pred, batch["y"][:, 0])

    head_epochs = int(phase.freeze_epochs) if ctx.init_from is not None else 0
    if head_epochs > 0:
        fit_head_only(ctx, model, step, train, val, head_epochs, directory / "head", task_name)
    # End to end: the same number of epochs (and steps) whether the encoder starts from scratch or not,
    # on a schedule of its own (warmup, then cosine over exactly these epochs).
    trainer = Trainer(
        model,
        step,
        make_trainer_config(ctx, directory),
        on_log=ctx.prefixed_log(f"{task_name}/"),
        device=ctx.device,
    )
    result = trainer.fit(train, val, epochs=int(phase.epochs), resume_from=resume_point(directory))
    ctx.log_figure(learning_curves(result.history, f"finetune {task_name}"), f"plots/{task_name}_curves.png")

    best = torch.load(trainer.best_checkpoint, map_location="cpu", weights_only=True)["model"]
    model.load_state_dict(best)
    short = CHALLENGE_TASKS.get(task_name, task_name)
    for split, data_loader in (("val", full_val), ("test", test)):
        pred, true = predict(model.to(ctx.device), data_loader, ctx.device)
        if kind == "regression":
            metrics[f"{split}_nrmse_{short}"] = _safe_nrmse(true, pred[:, 0], f"{task_name} {split}")
        else:
            metrics[f"{split}_balanced_accuracy_{short}"] = balanced_accuracy(true, pred.argmax(1))
        if split == "test" and kind == "regression":
            ctx.log_figure(
                _scatter(true, pred[:, 0], f"{task_name}: test predictions"), f"plots/{task_name}_test.png"
            )
    metrics[f"{task_name}_best_epoch"] = float(result.best_epoch or 0)
    mark_stage_done(ctx, directory, metrics)
    return metrics, trainer.best_checkpoint


def fit_head_only(
    ctx: PhaseContext, model: nn.Module, step, train, val, epochs: int, directory: Path, task_name: str
) -> None:
    """Train the head on a frozen, initialised encoder (its own warmup + cosine), leaving ``model`` at the
    stage's last weights; a finished stage is not retrained when a later one was interrupted."""
    directory.mkdir(parents=True, exist_ok=True)
    set_requires_grad(model.encoder, False)
    if stage_done(directory) is None:
        trainer = Trainer(
            model,
            step,
            # frozen encoder weights get no gradient; DDP must expect that
            make_trainer_config(ctx, directory, monitor=None, overrides={"ddp_find_unused_parameters": True}),
            on_log=ctx.prefixed_log(f"{task_name}/head/"),
            device=ctx.device,
        )
        trainer.fit(train, val, epochs=epochs, resume_from=resume_point(directory))
        mark_stage_done(ctx, directory, {"epochs": epochs})
    state = torch.load(directory / "last.pt", map_location="cpu", weights_only=True)["model"]
    model.load_state_dict(state)
    set_requires_grad(model.encoder, True)
    freeze_unused_mask_token(model.encoder)


def run(ctx: PhaseContext) -> PhaseOutput:
    tasks = ctx.phase_cfg.tasks
    if not tasks:
        raise ValueError("phases.finetune.tasks is empty: name at least one task (e.g. challenge1)")
    metrics: dict[str, float] = {}
    files: dict[str, Path] = {}
    checkpoint = None
    for name, task in tasks.items():
        task_metrics, best = train_task(ctx, name, task)
        metrics.update(task_metrics)
        files[f"checkpoints/{name}"] = best
        checkpoint = checkpoint or best
    for split in ("val", "test"):
        c1, c2 = metrics.get(f"{split}_nrmse_c1"), metrics.get(f"{split}_nrmse_c2")
        if c1 is not None and c2 is not None:
            metrics[f"{split}_score"] = (
                challenge_score(c1, c2) if not (math.isnan(c1) or math.isnan(c2)) else math.nan
            )
    return PhaseOutput(checkpoint=checkpoint, metrics=metrics, files=files)
