"""Contrastive learning (InfoNCE, in-batch negatives) on positive pairs of windows.

Positives come from :func:`eegphase.objectives.pairs.pair_sampler` (``contrastive.pair_mode``): the same
(movie, time bin) from another subject (``movie_isc``) or the same movie at any time (``movie_any_time``),
both on movie windows; or, on any dataset's fixed windows (the ``pretrain`` mode), a window of another
subject with the same recording label (``same_label``) or another window of the same recording
(``same_recording``). The mean cosine similarity of positives and negatives is logged every step and drawn
per epoch; how the first epoch's pairs were drawn is logged with the final metrics (``train/pairs_same_moment``:
share of true same-moment pairs, ``train/pairs_fallback``: share whose positive fell back to another time of
the movie; ``val/`` alike).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import DataLoader

from eegphase.engine.distributed import DistInfo, dist_info
from eegphase.engine.sampler import ShardedBatchSampler
from eegphase.engine.seeding import make_generator, seed_everything
from eegphase.engine.transfer import freeze_unused_mask_token, load_encoder_weights
from eegphase.models.heads import ProjectionHead
from eegphase.models.predictor import encoder_from_config
from eegphase.objectives.infonce import InfoNCELoss
from eegphase.objectives.pairs import MOVIE_PAIR_MODES, PairDataset, pair_sampler, pair_source_mode
from eegphase.phases.common import PhaseContext, PhaseOutput, dataset, fit_stage


class ContrastiveModel(nn.Module):
    """Encoder + projection head + InfoNCE (its learnable temperature is a parameter like any other)."""

    def __init__(self, encoder: nn.Module, projection_dim: int, temperature: float):
        super().__init__()
        self.encoder = encoder
        self.projection = ProjectionHead(encoder.embed_dim, out_dim=projection_dim)
        self.loss = InfoNCELoss(initial_temperature=temperature)

    def forward(self, anchor: torch.Tensor, positive: torch.Tensor) -> dict[str, torch.Tensor]:
        both = self.projection(self.encoder(torch.cat([anchor, positive])))
        half = anchor.shape[0]
        return self.loss(both[:half].float(), both[half:].float())


def _collate(pairs):
    anchors = torch.stack([a["x"] for a, _ in pairs])
    positives = torch.stack([p["x"] for _, p in pairs])
    return {"anchor": anchors, "positive": positives}


def _pair_loader(
    ctx: PhaseContext, split: str, train: bool, max_batches: int | None
) -> tuple[DataLoader, dict[str, float]]:
    """Batches of (anchor, positive) pairs; in training this rank's share of each epoch's plan. Also how the
    first epoch's pairs were drawn (``pairs_fallback``: share of positives from the fallback pool; movie modes
    add ``pairs_same_moment``: share of positives at the anchor's movie moment).

    ``batch_size`` is per process and InfoNCE's negatives are the other pairs of the same process's batch.
    """
    phase = ctx.phase_cfg
    pair_mode = str(ctx.cfg.contrastive.pair_mode)
    data = dataset(ctx, pair_source_mode(pair_mode), split, targets=[])
    pairs = pair_sampler(data.windows, int(phase.batch_size), pair_mode, seed=ctx.seed if train else 0)
    info = dist_info() if train else DistInfo()
    batches = ShardedBatchSampler(pairs, info.rank, info.world_size, max_batches, follow_epochs=train)
    shares = pairs.pair_shares(list(batches))  # the pairs of epoch 0 that this process uses
    drawn = {"pairs_fallback": shares["fallback"]}
    if pair_mode in MOVIE_PAIR_MODES:
        drawn["pairs_same_moment"] = shares["same_unit"]
    loader = DataLoader(
        PairDataset(data),
        batch_sampler=batches,
        collate_fn=_collate,
        num_workers=int(ctx.trainer_cfg["num_workers"]),
        generator=make_generator(ctx.seed),
    )
    return loader, drawn


def run(ctx: PhaseContext) -> PhaseOutput:
    phase = ctx.phase_cfg  # contrastive=none never gets here: pipeline.plan.pipeline_phases drops the phase
    seed_everything(ctx.seed)
    encoder = encoder_from_config(ctx.model_cfg)
    report = None
    if ctx.init_from is not None:
        report = load_encoder_weights(encoder, ctx.init_from, prefix="encoder.")
    freeze_unused_mask_token(encoder)
    model = ContrastiveModel(encoder, int(phase.projection_dim), float(phase.temperature))
    train, train_pairs = _pair_loader(ctx, "train", True, phase.max_batches_per_epoch)
    val, val_pairs = _pair_loader(ctx, "val", False, phase.max_eval_batches)
    drawn = {
        f"{split}/{k}": v
        for split, shares in (("train", train_pairs), ("val", val_pairs))
        for k, v in shares.items()
    }

    def step(model, batch):
        out = model(batch["anchor"], batch["positive"])
        return out["loss"], {
            "pos_similarity": out["pos_cos"],
            "neg_similarity": out["neg_cos"],
            "accuracy": out["accuracy"],
            "temperature": out["temperature"],
        }

    directory = ctx.work_dir / "encoder"
    directory.mkdir(parents=True, exist_ok=True)
    trainer, metrics = fit_stage(ctx, model, step, train, val, int(phase.epochs), directory, "")
    ctx.log_figure(_similarity_plot(trainer.history), "plots/similarity.png")
    metrics.update(drawn)  # logged with the phase's final metrics
    if report is not None:
        metrics["init_missing_keys"] = float(len(report.missing))
    return PhaseOutput(
        checkpoint=trainer.best_checkpoint, metrics=metrics, files={"checkpoints": trainer.best_checkpoint}
    )


def _similarity_plot(history: list[dict[str, float]]):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots(figsize=(5, 3.5))
    for split in ("train_epoch", "val"):
        for kind, style in (("pos", "-"), ("neg", "--")):
            key = f"{split}/{kind}_similarity"
            points = [(row["epoch"], row[key]) for row in history if key in row]
            if points:
                ax.plot(*zip(*points, strict=True), style, marker="o", label=f"{split} {kind}")
    ax.set_xlabel("epoch")
    ax.set_ylabel("mean cosine similarity")
    ax.set_title("positive vs negative pairs")
    ax.legend(fontsize=7)
    figure.tight_layout()
    return figure
