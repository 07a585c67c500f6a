"""What every phase shares: its context, data loaders, and the mapping from config to the engine."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf
from torch.utils.data import DataLoader, Dataset, SequentialSampler

from eegphase.data.datasets import WindowDataset, make_dataset
from eegphase.data.splits import SplitConfig
from eegphase.engine.distributed import dist_info
from eegphase.engine.loop import StepFn, Trainer, TrainerConfig
from eegphase.engine.optim import OptimizerConfig, ScheduleConfig
from eegphase.engine.sampler import ShardedShuffleSampler, WeightedShardedSampler
from eegphase.engine.seeding import make_generator, seed_worker

LogFn = Callable[[dict[str, float], int], None]


@dataclass
class PhaseContext:
    """Everything a phase needs from the runner; phases never talk to MLflow themselves."""

    cfg: DictConfig  # the whole resolved run config
    name: str  # pretrain | contrastive | finetune
    seed: int
    work_dir: Path  # this phase's folder (keyed by its fingerprint): checkpoints live here
    init_from: Path | None  # a local checkpoint of the upstream phase, if any
    device: torch.device
    log_metrics: LogFn = lambda metrics, step: None
    log_figure: Callable[[Any, str], None] = lambda figure, name: None
    # (windows dataset, mode, split): records the windows table a phase trains or evaluates on
    log_dataset: Callable[[WindowDataset, str, str | None], None] = lambda data, mode, split: None

    @property
    def is_main(self) -> bool:
        """Rank 0 (or a single process): the one that writes shared files such as ``done.json``."""
        return dist_info().is_main

    @property
    def phase_cfg(self) -> DictConfig:
        return self.cfg.phases[self.name]

    @property
    def trainer_cfg(self) -> dict[str, Any]:
        """This phase's engine settings: ``phases.<name>.trainer``, the global ``trainer`` key by key unless
        the phase overrides a key (conf/trainer/phase/inherit.yaml)."""
        return effective_trainer(self.cfg, self.name)

    @property
    def cache_dir(self) -> Path:
        return Path(self.cfg.cache_dir)

    @property
    def split_cfg(self) -> SplitConfig:
        return SplitConfig.from_mapping(OmegaConf.to_container(self.cfg.split, resolve=True))

    @property
    def model_cfg(self) -> dict:
        """The model config, plain: ``models.predictor`` builds its ``encoder`` (a ``_target_`` spec)."""
        return OmegaConf.to_container(self.cfg.model, resolve=True)

    def prefixed_log(self, prefix: str) -> LogFn:
        return lambda metrics, step: self.log_metrics({f"{prefix}{k}": v for k, v in metrics.items()}, step)


# trainer keys that the phases' data loaders read; every other key is a TrainerConfig field
LOADER_KEYS = ("num_workers",)


def effective_trainer(cfg: DictConfig, phase: str) -> dict[str, Any]:
    """The trainer settings ``phase`` trains with (``phases.<phase>.trainer``, resolved)."""
    return OmegaConf.to_container(cfg.phases[phase].trainer, resolve=True)


@dataclass
class PhaseOutput:
    """What a phase hands back: the checkpoint for the next phase and its final metrics."""

    checkpoint: Path
    metrics: dict[str, float] = field(default_factory=dict)
    files: dict[str, Path] = field(default_factory=dict)  # extra artifacts: {artifact sub-folder: local path}


def dataset(ctx: PhaseContext, mode: str, split: str | None, **kwargs) -> WindowDataset:
    """A windows dataset of the cache, scaled to the model's input units; its windows table is logged as an
    input of the phase's run."""
    data = make_dataset(
        ctx.cache_dir, mode, split, ctx.split_cfg, scale=float(ctx.cfg.input_scale), seed=ctx.seed, **kwargs
    )
    ctx.log_dataset(data, mode, split)
    return data


def loader(
    ctx: PhaseContext,
    data: Dataset,
    batch_size: int,
    train: bool,
    max_batches: int | None = None,
    weights=None,
) -> DataLoader:
    """Shuffled batches for training (seeded by (seed, epoch), this rank's share under torchrun), ordered
    ones for evaluation (the whole split on every rank: the engine reduces the metrics over ranks).

    ``batch_size`` and ``max_batches`` (training: batches per epoch) are per process. ``weights`` (one per
    window): training draws windows with these probabilities instead of shuffling (mixed HBN + TUH).
    """
    if len(data) == 0:
        raise ValueError(f"phase {ctx.name}: a {'training' if train else 'evaluation'} split has no windows")
    info = dist_info()
    if train and weights is not None:
        sampler = WeightedShardedSampler(
            weights, batch_size, ctx.seed, info.rank, info.world_size, max_batches
        )
    elif train:
        sampler = ShardedShuffleSampler(
            len(data), batch_size, ctx.seed, info.rank, info.world_size, max_batches
        )
    elif max_batches is not None and max_batches * batch_size * info.world_size < len(data):
        # The same fixed, spread-out subset every epoch, so validation curves stay comparable. Its size is
        # counted in global batches (every rank evaluates it whole): 2 ranks x batch 4 monitor the windows
        # that 1 process x batch 8 does, and so pick the same best epoch.
        size = max_batches * batch_size * info.world_size
        sampler = np.sort(np.random.default_rng(0).choice(len(data), size, replace=False)).tolist()
    else:
        sampler = SequentialSampler(data)
    workers = int(ctx.trainer_cfg["num_workers"])
    return DataLoader(
        data,
        batch_size=min(batch_size, len(data)),
        sampler=sampler,
        num_workers=workers,
        worker_init_fn=seed_worker if workers else None,
        generator=make_generator(ctx.seed),
        persistent_workers=False,
    )


def trainer_config(
    ctx: PhaseContext,
    checkpoint_dir: Path,
    monitor: str | None = "val/loss",
    use_layer_decay: bool = True,
    **overrides: Any,
) -> TrainerConfig:
    """The engine's config: this phase's ``trainer`` settings as they are, and the phase's lr, weight decay,
    layer decay (unless ``use_layer_decay`` is false), warmup and patience; ``overrides`` set any other
    TrainerConfig field."""
    engine = {key: value for key, value in ctx.trainer_cfg.items() if key not in LOADER_KEYS}
    phase = ctx.phase_cfg
    layer_decay = phase.get("layer_decay") if use_layer_decay else None
    return TrainerConfig(
        **engine,
        monitor=monitor,
        patience=phase.get("patience"),
        checkpoint_dir=str(checkpoint_dir),
        progress=bool(ctx.cfg.progress),
        optimizer=OptimizerConfig(
            lr=float(phase.lr), weight_decay=float(phase.weight_decay), layer_decay=layer_decay
        ),
        schedule=ScheduleConfig(warmup_epochs=float(phase.warmup_epochs)),
        **overrides,
    )


def fit_stage(
    ctx: PhaseContext,
    model: torch.nn.Module,
    step_fn: StepFn,
    train: DataLoader,
    val: DataLoader,
    epochs: int,
    directory: Path,
    prefix: str,
    find_unused: bool = False,
    on_epoch_end: Callable[[Trainer, dict[str, float]], None] | None = None,
) -> tuple[Trainer, dict[str, float]]:
    """Train one stage with the engine, resuming it when an earlier run was interrupted; returns the trainer
    and the last epoch's metrics under ``prefix``, and logs the stage's learning curves.

    ``find_unused``: some parameters get no gradient (auxiliary heads without a weight), which DDP must know.
    """
    trainer = Trainer(
        model,
        step_fn,
        trainer_config(ctx, directory, ddp_find_unused_parameters=find_unused),
        on_log=ctx.prefixed_log(prefix),
        on_epoch_end=on_epoch_end,
        device=ctx.device,
    )
    result = trainer.fit(train, val, epochs=epochs, resume_from=resume_point(directory))
    if result.history:
        ctx.log_figure(
            learning_curves(result.history, f"{ctx.name} {prefix.rstrip('/')}".strip()),
            f"plots/{prefix}curves.png",
        )
    final = {f"{prefix}{k}": v for k, v in (result.history[-1] if result.history else {}).items()}
    return trainer, final


def stage_done(directory: Path) -> dict | None:
    """The metrics of a stage that finished before an interruption of a later one, if it did."""
    marker = directory / "done.json"
    return json.loads(marker.read_text()) if marker.exists() else None


def mark_stage_done(ctx: PhaseContext, directory: Path, metrics: dict) -> None:
    """Record a finished stage (rank 0 writes; every rank sees the same folder)."""
    if ctx.is_main:
        (directory / "done.json").write_text(json.dumps(metrics))


def resume_point(checkpoint_dir: Path) -> Path | None:
    """The last checkpoint of an interrupted run of this phase, if there is one."""
    last = checkpoint_dir / "last.pt"
    return last if last.exists() else None


def learning_curves(history: list[dict[str, float]], title: str):
    """A figure of the per-epoch training and validation curves in ``history``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = sorted({k for row in history for k in row if k.startswith(("train_epoch/", "val/"))})
    figure, ax = plt.subplots(figsize=(6, 4))
    for key in keys:
        points = [(row["epoch"], row[key]) for row in history if key in row]
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", label=key)
    ax.set_xlabel("epoch")
    ax.set_title(title)
    ax.legend(fontsize=7)
    figure.tight_layout()
    return figure
