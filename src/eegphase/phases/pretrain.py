"""Pretraining: self-supervised encoder training plus the auxiliary heads of ``aux_task``.

The model's ``pretrain_objective`` (``phases.pretrain.objective``) picks the recipe: ``mem`` (LaBraM, see
``phases.pretrain_mem``: a neural tokenizer, then masked EEG modelling on its codes) or ``jepa`` (SignalJEPA,
see ``phases.pretrain_jepa``: the context encoder predicts an EMA target encoder's tokens at masked regions).
This entry does what both share: the data, the auxiliary heads (p_factor, age, sex) that learn from the pooled
embedding (L = L_ssl + sum_k w_k L_k), the mixing shares of mixed windows, and the encoder stage's fit.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import torch
from torch import nn
from torch.utils.data import DataLoader

from eegphase.data.datasets import TARGETS
from eegphase.objectives.multitask import AUX_TASKS, AuxiliaryObjective
from eegphase.phases.common import PhaseContext, PhaseOutput, dataset, fit_stage, loader
from eegphase.phases.pretrain_jepa import JepaRecipe
from eegphase.phases.pretrain_mem import MemRecipe


class PretrainRecipe(Protocol):
    """One training style: the model the encoder stage trains, its self-supervised step, and the metrics and
    files of the stages it ran before (MEM's tokenizer)."""

    model: nn.Module
    metrics: dict[str, float]
    files: dict[str, Path]

    def step(
        self, model: nn.Module, batch: dict[str, Any]
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None, dict[str, torch.Tensor]]:
        """(self-supervised losses, auxiliary heads' predictions or None, terms to log) for one batch."""
        ...

    def validation_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        """Metrics derived from an epoch's validation metrics (e.g. MEM's gap to the codes' entropy)."""
        ...


RECIPES: dict[str, Callable[[PhaseContext, DataLoader, DataLoader, bool], PretrainRecipe]] = {
    "mem": MemRecipe,
    "jepa": JepaRecipe,
}


def source_shares(batch: dict, sources: list[str]) -> dict[str, torch.Tensor]:
    """The share of each dataset among the batch's windows (mixed mode), to check the mixing ratio."""
    if not sources:
        return {}
    return {f"share_{name}": (batch["source"] == i).float().mean() for i, name in enumerate(sources)}


def check_objective(objective: str | None, model_name: str) -> None:
    """MEM pretrains LaBraM, JEPA pretrains SignalJEPA; anything else is a config error."""
    if objective is None:
        raise ValueError(
            f"model {model_name!r} has no self-supervised objective, so it cannot be pretrained: use "
            "+pipeline=baseline, or a labram_* or signal_jepa model (or set phases.pretrain.objective)"
        )
    if objective not in RECIPES:
        raise ValueError(f"unknown phases.pretrain.objective {objective!r}; choose mem or jepa")
    if objective == "mem" and not model_name.startswith("labram"):
        raise ValueError(
            f"phases.pretrain.objective=mem needs model=labram_*, not {model_name!r} (or use jepa)"
        )
    if objective == "jepa" and model_name != "signal_jepa":
        raise ValueError(f"phases.pretrain.objective=jepa needs model=signal_jepa, not {model_name!r}")


def run(ctx: PhaseContext) -> PhaseOutput:
    """Pretrain the encoder with the objective's recipe; the auxiliary heads learn beside it."""
    phase = ctx.phase_cfg
    objective = phase.objective
    check_objective(objective, ctx.model_cfg["name"])

    mode = str(phase.mode)
    train_data, val_data = dataset(ctx, mode, "train"), dataset(ctx, mode, "val")
    batches = phase.max_batches_per_epoch
    # mixed windows are drawn at windows.mixed_ratio (their mix_weight); other modes are shuffled
    train = loader(ctx, train_data, int(phase.batch_size), True, batches, weights=train_data.sample_weights)
    sources = list(getattr(train_data, "sources", []))
    val = loader(ctx, val_data, int(phase.batch_size), False, phase.max_eval_batches)
    aux = AuxiliaryObjective(dict(ctx.cfg.aux_task.tasks), TARGETS[mode])
    recipe = RECIPES[objective](ctx, train, val, bool(aux))

    def step(model, batch):
        losses, predictions, terms = recipe.step(model, batch)
        if aux:
            losses.update(aux.losses(predictions, batch["y"]))
        return losses, {**terms, **source_shares(batch, sources)}

    directory = ctx.work_dir / "encoder"
    directory.mkdir(parents=True, exist_ok=True)
    unused_heads = bool(aux) and set(aux.tasks) != set(AUX_TASKS)

    def log_validation_metrics(trainer, metrics: dict[str, float]) -> None:
        ctx.log_metrics(recipe.validation_metrics(metrics), trainer.step)

    trainer, final = fit_stage(
        ctx,
        recipe.model,
        step,
        train,
        val,
        int(phase.epochs),
        directory,
        "",
        unused_heads,
        on_epoch_end=log_validation_metrics,
    )
    final.update(recipe.validation_metrics(final))
    files = {"checkpoints": trainer.best_checkpoint, **recipe.files}
    return PhaseOutput(checkpoint=trainer.best_checkpoint, metrics={**recipe.metrics, **final}, files=files)
