"""Pretraining's ``jepa`` recipe (SignalJEPA): the context encoder predicts an EMA target encoder's tokens at
masked regions."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from eegphase.engine.distributed import unwrap_model
from eegphase.engine.seeding import seed_everything
from eegphase.models.channel_adapters import AdaptedEncoder, adapter_kwargs
from eegphase.models.heads import AuxiliaryHeads
from eegphase.models.masking import channel_token_mask, pool_tokens
from eegphase.models.predictor import encoder_from_config
from eegphase.models.signal_jepa import SignalJEPAPretrainer
from eegphase.phases.common import PhaseContext


class JepaPretrainModel(nn.Module):
    """SignalJEPA's pretrainer (context + EMA target encoders, predictor) (+ auxiliary heads)."""

    def __init__(self, encoder: nn.Module, mask_ratio: float, with_aux: bool):
        super().__init__()
        self.jepa = SignalJEPAPretrainer(encoder, mask_ratio=mask_ratio)
        self.encoder = self.jepa.encoder
        self.aux_heads = AuxiliaryHeads(encoder.embed_dim) if with_aux else None

    def forward(
        self, x: torch.Tensor, channel_mask: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor] | None]:
        """The JEPA loss on one batch, and the auxiliary heads' predictions (None without heads).

        ``channel_mask`` (B, C) bool: tokens of zero-padded channels are no targets and are not pooled.
        """
        loss = self.jepa.loss(x, channel_mask=channel_mask)
        aux = None
        if self.aux_heads is not None:
            tokens = self.encoder(x, return_all_tokens=True, **adapter_kwargs(self.encoder, channel_mask))
            valid = None if isinstance(self.encoder, AdaptedEncoder) else channel_mask
            aux = self.aux_heads(pool_tokens(tokens, channel_token_mask(valid, tokens.shape[1])).float())
        return loss, aux


class JepaRecipe:
    """The JEPA training style for ``phases.pretrain``: a single stage, the encoder stage, with no metrics
    or files of earlier stages. ``train``/``val`` are unused (the MEM recipe trains its tokenizer on them)."""

    def __init__(self, ctx: PhaseContext, train: DataLoader, val: DataLoader, with_aux: bool):
        self.metrics: dict[str, float] = {}
        self.files: dict[str, Path] = {}
        seed_everything(ctx.seed)
        self.model = JepaPretrainModel(
            encoder_from_config(ctx.model_cfg), float(ctx.phase_cfg.mask_ratio), with_aux
        )

    def validation_metrics(self, metrics: dict[str, float]) -> dict[str, float]:
        """None: JEPA's loss has no context-free floor to compare with."""
        return {}

    def step(
        self, model: nn.Module, batch: dict[str, Any]
    ) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor] | None, dict[str, torch.Tensor]]:
        """The JEPA loss and the auxiliary heads' predictions, after the EMA update of the target encoder."""
        # EMA of the weights the previous optimizer step produced
        unwrap_model(model).jepa.update_target()
        loss, predictions = model(batch["x"], batch["channel_mask"])
        return {"jepa": loss}, predictions, {}
