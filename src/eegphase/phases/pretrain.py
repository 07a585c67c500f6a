"""Pretraining: self-supervised encoder training plus the auxiliary heads of ``aux_task``.

``objective=mem`` (LaBraM): the neural tokenizer is trained first (its own stage, checkpointed in
``work_dir/tokenizer``), then masked EEG modelling with symmetric masks predicts its codes. ``objective=jepa``
(SignalJEPA): the context encoder predicts an EMA target encoder's tokens at masked regions. Either way the
auxiliary heads (p_factor, age, sex) learn from the pooled embedding: L = L_ssl + sum_k w_k L_k.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from eegphase.data.datasets import TARGETS
from eegphase.engine.distributed import unwrap_model
from eegphase.engine.loop import Trainer
from eegphase.engine.seeding import seed_everything
from eegphase.engine.transfer import freeze_unused_mask_token
from eegphase.models.channel_adapters import AdaptedEncoder
from eegphase.models.heads import AuxiliaryHeads, CodePredictionHead
from eegphase.models.masking import symmetric_patch_masks
from eegphase.models.predictor import encoder_from_config
from eegphase.models.registry import build_encoder
from eegphase.models.signal_jepa import SignalJEPAPretrainer
from eegphase.objectives.masked_modeling import (
    MaskedModelingResult,
    split_stacked_logits,
    symmetric_masked_modeling_loss,
    trivial_code_predictor,
    trivial_code_scores,
)
from eegphase.objectives.metrics import codebook_stats
from eegphase.objectives.multitask import AUX_TASKS, AuxiliaryObjective
from eegphase.phases.common import (
    PhaseContext,
    PhaseOutput,
    dataset,
    learning_curves,
    loader,
    mark_stage_done,
    resume_point,
)
from eegphase.phases.common import trainer_config as make_trainer_config


def channel_token_mask(channel_mask: torch.Tensor | None, n_tokens: int) -> torch.Tensor | None:
    """(B, C) real-channel mask -> (B, n_tokens) for channel-major tokens (token = channel * P + patch)."""
    if channel_mask is None:
        return None
    return channel_mask.bool().repeat_interleave(n_tokens // channel_mask.shape[1], dim=1)


def pool_tokens(tokens: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Mean of the tokens (B, N, D) where ``valid`` (B, N) (all of them without it): padded channels
    do not dilute the embedding the auxiliary heads read."""
    if valid is None:
        return tokens.mean(dim=1)
    weights = valid.unsqueeze(-1).to(tokens.dtype)
    return (tokens * weights).sum(1) / weights.sum(1).clamp_min(1)


def _adapter_kwargs(encoder: nn.Module, channel_mask: torch.Tensor | None) -> dict:
    """An encoder behind a learned channel adapter takes the channel mask; a bare one has no use for it."""
    return {"channel_mask": channel_mask} if isinstance(encoder, AdaptedEncoder) else {}


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
        go through one stacked forward. In eval mode the masks come from a fixed seed, so every validation
        pass scores the same masked patches. Everything trained goes through ``forward`` so that DDP sees
        (and syncs) it. ``channel_mask`` (B, C) bool, True = real channel: the patches of zero-padded
        channels (a TUH window on the HydroCel layout) are no targets and stay out of the pooled embedding.
        """
        generator = None if self.training else torch.Generator(x.device).manual_seed(0)
        mask, inverse = symmetric_patch_masks(x.shape[0], codes.shape[1], ratio, x.device, generator)
        valid = channel_token_mask(channel_mask, codes.shape[1])
        views = [mask, inverse]
        if self.aux_heads is not None:
            views.append(torch.zeros_like(mask))
        stacked = torch.cat(views)
        tokens = self.encoder(
            x.repeat(len(views), 1, 1),
            mask=stacked,
            return_all_tokens=True,
            **_adapter_kwargs(
                self.encoder, None if channel_mask is None else channel_mask.repeat(len(views), 1)
            ),
        )
        n = x.shape[0]
        targets = stacked[: 2 * n] if valid is None else stacked[: 2 * n] & valid.repeat(2, 1)
        view, inverse_view = split_stacked_logits(self.code_head(tokens[: 2 * n], targets), mask, valid)
        mem = symmetric_masked_modeling_loss(view, inverse_view, codes, mask, valid)
        aux = None
        if self.aux_heads is not None:
            aux = self.aux_heads(pool_tokens(tokens[2 * n :], valid).float())
        return mem, aux


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
            tokens = self.encoder(x, return_all_tokens=True, **_adapter_kwargs(self.encoder, channel_mask))
            valid = None if isinstance(self.encoder, AdaptedEncoder) else channel_mask
            aux = self.aux_heads(pool_tokens(tokens, channel_token_mask(valid, tokens.shape[1])).float())
        return loss, aux


def _fit(
    ctx: PhaseContext,
    model,
    step_fn,
    train,
    val,
    epochs,
    directory: Path,
    prefix: str,
    find_unused: bool = False,
    on_epoch_end=None,
) -> tuple[Trainer, dict]:
    """Train one stage with the engine, resuming it when an earlier run was interrupted.

    ``find_unused``: some parameters get no gradient (auxiliary heads without a weight), which DDP must know.
    """
    trainer = Trainer(
        model,
        step_fn,
        make_trainer_config(ctx, directory, ddp_find_unused_parameters=find_unused),
        on_log=ctx.prefixed_log(prefix),
        on_epoch_end=on_epoch_end,
        device=ctx.device,
    )
    result = trainer.fit(train, val, epochs=epochs, resume_from=resume_point(directory))
    if result.history:
        ctx.log_figure(
            learning_curves(result.history, f"{ctx.name} {prefix.rstrip('/')}"), f"plots/{prefix}curves.png"
        )
    final = {f"{prefix}{k}": v for k, v in (result.history[-1] if result.history else {}).items()}
    return trainer, final


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
    tokenizer = build_encoder("tokenizer", size=phase.tokenizer_size, n_codes=int(phase.n_codes))
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

    trainer, final = _fit(
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
    if objective not in ("mem", "jepa"):
        raise ValueError(f"unknown phases.pretrain.objective {objective!r}; choose mem or jepa")
    if objective == "mem" and not model_name.startswith("labram"):
        raise ValueError(
            f"phases.pretrain.objective=mem needs model=labram_*, not {model_name!r} (or use jepa)"
        )
    if objective == "jepa" and model_name != "signal_jepa":
        raise ValueError(f"phases.pretrain.objective=jepa needs model=signal_jepa, not {model_name!r}")


def run(ctx: PhaseContext) -> PhaseOutput:
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

    metrics: dict[str, float] = {}
    if objective == "mem":
        tokenizer, tokenizer_metrics = train_tokenizer(ctx, train, val)
        metrics.update(tokenizer_metrics)
        # The trivial predictor: code frequencies on the training windows, scored beside MEM on every batch.
        counts = code_counts(tokenizer, train, ctx.device)
        log_prior = trivial_code_predictor(counts, int(phase.n_codes)).to(ctx.device)
        seed_everything(ctx.seed)
        model = MaskedPretrainModel(encoder_from_config(ctx.model_cfg), int(phase.n_codes), bool(aux))
        ratio = float(phase.mask_ratio)

        def step(model, batch):
            x, channel_mask = batch["x"], batch["channel_mask"]
            with torch.no_grad():
                codes = tokenizer.encode(x)
            mem, predictions = model(x, codes, ratio, channel_mask)
            losses = {"mem": mem.loss}
            if aux:
                losses.update(aux.losses(predictions, batch["y"]))
            # the trivial predictor is scored on the same targets: every real-channel patch
            trivial_loss, trivial_accuracy = trivial_code_scores(
                log_prior, codes[channel_token_mask(channel_mask, codes.shape[1])]
            )
            return losses, {
                "mem_accuracy": mem.accuracy,
                "mem_trivial_loss": trivial_loss,
                "mem_trivial_accuracy": trivial_accuracy,
                **source_shares(batch, sources),
            }

    else:
        seed_everything(ctx.seed)
        model = JepaPretrainModel(encoder_from_config(ctx.model_cfg), float(phase.mask_ratio), bool(aux))

        def step(model, batch):
            # EMA of the weights the previous optimizer step produced
            unwrap_model(model).jepa.update_target()
            loss, predictions = model(batch["x"], batch["channel_mask"])
            losses = {"jepa": loss}
            if aux:
                losses.update(aux.losses(predictions, batch["y"]))
            return losses, source_shares(batch, sources)

    directory = ctx.work_dir / "encoder"
    directory.mkdir(parents=True, exist_ok=True)
    unused_heads = bool(aux) and set(aux.tasks) != set(AUX_TASKS)
    trainer, final = _fit(ctx, model, step, train, val, int(phase.epochs), directory, "", unused_heads)
    metrics.update(final)
    files = {"checkpoints": trainer.best_checkpoint}
    if objective == "mem":
        files["checkpoints/tokenizer"] = ctx.work_dir / "tokenizer" / "best.pt"
    return PhaseOutput(checkpoint=trainer.best_checkpoint, metrics=metrics, files=files)
