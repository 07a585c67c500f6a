"""Pretraining's ``mem`` recipe (LaBraM): the neural tokenizer, then masked EEG modelling on its codes.

The tokenizer is trained first (its own stage, checkpointed in ``work_dir/tokenizer``); then masked EEG
modelling with symmetric masks predicts its codes, scored beside a trivial predictor (the code frequencies of
the training windows) on every batch.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from eegphase.engine.distributed import unwrap_model
from eegphase.engine.loop import Trainer
from eegphase.engine.seeding import seed_everything
from eegphase.engine.transfer import freeze_unused_mask_token
from eegphase.models.channel_adapters import adapter_kwargs
from eegphase.models.heads import AuxiliaryHeads, CodePredictionHead
from eegphase.models.masking import channel_token_mask, pool_tokens, symmetric_patch_masks
from eegphase.models.predictor import encoder_from_config
from eegphase.models.registry import build_encoder
from eegphase.objectives.masked_modeling import (
    MaskedModelingResult,
    code_entropy,
    split_stacked_logits,
    symmetric_masked_modeling_loss,
    trivial_code_predictor,
    trivial_code_scores,
)
from eegphase.objectives.metrics import codebook_stats
from eegphase.phases.common import PhaseContext, fit_stage, mark_stage_done


class MaskedPretrainModel(nn.Module):
    """LaBraM encoder + code-prediction head (+ auxiliary heads): the module the MEM stage trains."""

    def __init__(self, encoder: nn.Module, n_codes: int, with_aux: bool):
        super().__init__()
        self.encoder = encoder
        self.code_head = CodePredictionHead(encoder.embed_dim, n_codes)
        self.aux_heads = AuxiliaryHeads(encoder.embed_dim) if with_aux else None

    def forward(
        self, x: torch.Tensor, codes: torch.Tensor, ratio: float, channel_mask: torch.Tensor | None = None
    ) -> tuple[MaskedModelingResult, dict[str, torch.Tensor] | None]:
        """MEM on one batch, and the auxiliary heads' predictions from the pooled unmasked tokens.

        Both symmetric views (and, with auxiliary heads, the unmasked input they read, as fine-tuning will)
        go through one stacked forward of the encoder, which embeds the patches once for all views. In eval
        mode the masks come from a fixed seed, so every validation pass scores the same masked patches.
        Everything trained goes through ``forward`` so that DDP sees (and syncs) it. ``channel_mask`` (B, C)
        bool, True = real channel: the patches of zero-padded channels (a TUH window on the HydroCel layout)
        are no targets and stay out of the pooled embedding.
        """
        generator = None if self.training else torch.Generator(x.device).manual_seed(0)
        mask, inverse = symmetric_patch_masks(x.shape[0], codes.shape[1], ratio, x.device, generator)
        valid = channel_token_mask(channel_mask, codes.shape[1])
        views = [mask, inverse]
        if self.aux_heads is not None:
            views.append(torch.zeros_like(mask))
        stacked = torch.cat(views)
        tokens = self.encoder(
            x,
            mask=stacked,
            return_all_tokens=True,
            views=len(views),  # the stacked views share one patch embedding (and channel adaptation)
            **adapter_kwargs(self.encoder, channel_mask),
        )
        n = x.shape[0]
        targets = stacked[: 2 * n] if valid is None else stacked[: 2 * n] & valid.repeat(2, 1)
        view, inverse_view = split_stacked_logits(self.code_head(tokens[: 2 * n], targets), mask, valid)
        mem = symmetric_masked_modeling_loss(view, inverse_view, codes, mask, valid)
        aux = None
        if self.aux_heads is not None:
            aux = self.aux_heads(pool_tokens(tokens[2 * n :], valid).float())
        return mem, aux


@torch.no_grad()
def code_counts(tokenizer: nn.Module, data_loader, device: torch.device) -> torch.Tensor:
    """How often each code is used on the real-channel patches of ``data_loader``'s windows (eval mode)."""
    tokenizer = unwrap_model(tokenizer)
    was_training = tokenizer.training
    tokenizer.eval()
    counts = torch.zeros(tokenizer.codebook.n_codes, dtype=torch.long)
    for batch in data_loader:
        codes = tokenizer.encode(batch["x"].to(device))
        valid = channel_token_mask(batch.get("channel_mask"), codes.shape[1])
        codes = codes if valid is None else codes[valid.to(codes.device)]
        counts += torch.bincount(codes.flatten().cpu(), minlength=len(counts))
    tokenizer.train(was_training)
    return counts


def codebook_health(tokenizer: nn.Module, data_loader, device: torch.device) -> dict[str, float]:
    """Codebook usage, perplexity and top share on ``data_loader``, plus restarts so far (see EMACodebook)."""
    stats = codebook_stats(code_counts(tokenizer, data_loader, device).numpy())
    return {**stats, "codebook_restarts": float(unwrap_model(tokenizer).codebook.restarts)}


def train_tokenizer(ctx: PhaseContext, train, val) -> tuple[nn.Module, dict[str, float]]:
    """Stage 1 of MEM: the VQ tokenizer learns to predict each patch's Fourier amplitude and phase.

    Codebook health (usage, perplexity on the validation windows) is logged every epoch: a collapsed
    tokenizer makes masked modelling predict a near-constant target. Returns the frozen tokenizer and its
    final metrics.
    """
    phase = ctx.phase_cfg
    directory = ctx.work_dir / "tokenizer"
    directory.mkdir(parents=True, exist_ok=True)
    seed_everything(ctx.seed)
    tokenizer = build_encoder(
        "tokenizer",
        size=phase.tokenizer_size,
        n_codes=int(phase.n_codes),
        phase_weight=float(phase.tokenizer_phase_weight),
    )
    freeze_unused_mask_token(tokenizer.encoder)

    def step(model, batch):
        out = model(batch["x"], channel_mask=batch["channel_mask"])  # padded channels: no targets
        return out.loss, {
            "amplitude": out.amplitude_loss,
            "phase": out.phase_loss,
            "commit": out.commitment_loss,
        }

    def log_health(trainer: Trainer, _metrics: dict) -> None:
        health = codebook_health(trainer.model, val, ctx.device)
        ctx.log_metrics({f"tokenizer/val/{k}": v for k, v in health.items()}, trainer.step)

    trainer, final = fit_stage(
        ctx,
        tokenizer,
        step,
        train,
        val,
        int(phase.tokenizer_epochs),
        directory,
        "tokenizer/",
        on_epoch_end=log_health,
    )
    state = torch.load(trainer.best_checkpoint, map_location="cpu", weights_only=True)["model"]
    tokenizer.load_state_dict(state)
    tokenizer = tokenizer.to(ctx.device).eval().requires_grad_(False)
    final.update({f"tokenizer/val/{k}": v for k, v in codebook_health(tokenizer, val, ctx.device).items()})
    mark_stage_done(ctx, directory, final)
    return tokenizer, final


class MemRecipe:
    """The MEM training style for ``phases.pretrain``: trains the tokenizer on construction, then hands the
    encoder stage its model and the step that predicts the frozen tokenizer's codes."""

    def __init__(self, ctx: PhaseContext, train: DataLoader, val: DataLoader, with_aux: bool):
        phase = ctx.phase_cfg
        self.tokenizer, self.metrics = train_tokenizer(ctx, train, val)
        self.files: dict[str, Path] = {"checkpoints/tokenizer": ctx.work_dir / "tokenizer" / "best.pt"}
        # The trivial predictor: code frequencies on the training windows, scored beside MEM on every batch.
        self.log_prior = trivial_code_predictor(code_counts(self.tokenizer, train, ctx.device)).to(ctx.device)
        # The floor of any context-free guess on the validation windows MEM is scored on (the same fixed
        # subset): the codes' own entropy. val/mem must get below it for masked modelling to have learned.
        self.val_code_entropy = code_entropy(code_counts(self.tokenizer, val, ctx.device))
        self.metrics["val/mem_code_entropy"] = self.val_code_entropy
        seed_everything(ctx.seed)
        self.model = MaskedPretrainModel(encoder_from_config(ctx.model_cfg), int(phase.n_codes), with_aux)
        self.ratio = float(phase.mask_ratio)

    def validation_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        """Beside an epoch's ``val/mem``: the codes' entropy and how far below it MEM lies, as a share of it
        (``val/mem_entropy_gap`` = 1 - val/mem / entropy; 0 = no better than the code frequencies)."""
        if "val/mem" not in metrics:
            return {}
        gap = 1.0 - float(metrics["val/mem"]) / self.val_code_entropy
        return {"val/mem_code_entropy": self.val_code_entropy, "val/mem_entropy_gap": gap}

    def step(
        self, model: nn.Module, batch: dict[str, Any]
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None, dict[str, torch.Tensor]]:
        """MEM's loss, the auxiliary heads' predictions, and MEM's accuracy beside the trivial predictor's."""
        x, channel_mask = batch["x"], batch["channel_mask"]
        with torch.no_grad():
            codes = self.tokenizer.encode(x)
        mem, predictions = model(x, codes, self.ratio, channel_mask)
        # the trivial predictor is scored on the same targets: every real-channel patch
        trivial_loss, trivial_accuracy = trivial_code_scores(
            self.log_prior, codes[channel_token_mask(channel_mask, codes.shape[1])]
        )
        return (
            {"mem": mem.loss},
            predictions,
            {
                "mem_accuracy": mem.accuracy,
                "mem_trivial_loss": trivial_loss,
                "mem_trivial_accuracy": trivial_accuracy,
            },
        )
