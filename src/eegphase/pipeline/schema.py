"""Structured-config schemas: a misspelled key, a wrong type or a missing value fails at start-up, by name.

The data-layer groups (data, preprocess, windows, split) are free-form here and validated by their own
``from_mapping`` constructors, which also name unknown keys.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, ValidationError


@dataclass
class ModelSchema:
    name: str = MISSING
    size: str | None = None
    pretrain_objective: str | None = None  # mem | jepa | None (the model has none)
    finetune_layer_decay: float | None = None  # per-block lr decay when fine-tuned (LaBraM: 0.65)
    channel_adapter: str = "zero_pad"  # zero_pad (datasets pad onto HydroCel-129) | perceiver (learned)
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass
class AuxTaskSpec:
    weight: float = MISSING
    loss: str = "mse"


@dataclass
class AuxTaskSchema:
    tasks: dict[str, AuxTaskSpec] = field(default_factory=dict)


@dataclass
class ContrastiveSchema:
    enabled: bool = True
    pair_mode: str = "same_time"


@dataclass
class TrainerSchema:
    precision: str = "auto"
    compile: bool = False
    grad_accum_steps: int = 1
    grad_clip_norm: float | None = 3.0
    ema_decay: float | None = None
    log_every: int = 10
    num_workers: int = 0


@dataclass
class PretrainSchema:
    objective: str | None = "mem"
    mode: str = "pretrain"
    epochs: int = 4
    tokenizer_epochs: int = 2
    tokenizer_size: str = "tiny"
    n_codes: int = 512
    mask_ratio: float = 0.5
    batch_size: int = 64
    max_batches_per_epoch: int | None = None
    max_eval_batches: int | None = None
    lr: float = 5e-4
    weight_decay: float = 0.05
    warmup_epochs: float = 0.5
    seed: int = 0
    init_from: str | None = None


@dataclass
class ContrastivePhaseSchema:
    epochs: int = 3
    batch_size: int = 32
    max_batches_per_epoch: int | None = None
    max_eval_batches: int | None = None
    projection_dim: int = 128
    temperature: float = 0.07
    lr: float = 3e-4
    weight_decay: float = 0.05
    warmup_epochs: float = 0.0
    seed: int = 0
    init_from: str | None = None


@dataclass
class FinetuneTask:
    mode: str = MISSING
    target: str = MISSING  # a column of the mode's windows table (subject-table headers in any case)
    kind: str = "regression"
    loss: str | None = None  # None: mse for regression, class-weighted cross-entropy for classification
    crop_s: float | None = None
    name: str | None = None  # the name in metric names (made safe); None: the task's key


def finetune_task_spec(name: str, task: Any) -> DictConfig:
    """``task`` (a mapping) typed and completed as a ``FinetuneTask``; an unknown key or a wrong type names the
    task."""
    try:
        return OmegaConf.merge(OmegaConf.structured(FinetuneTask), task)
    except (ValidationError, ConfigKeyError) as exc:
        raise ValueError(f"phases.finetune.tasks.{name}: {exc.msg}") from exc


@dataclass
class FinetuneSchema:
    # Any, not FinetuneTask: OmegaConf refuses a plain dict added from the command line
    # (`+phases.finetune.tasks.x={...}`) into a dict of dataclasses; plan.check_run_config validates each task
    # against FinetuneTask instead (finetune_task_spec) and puts the typed task back.
    tasks: dict[str, Any] = field(default_factory=dict)
    epochs: int = 6
    freeze_epochs: int = 2
    batch_size: int = 64
    max_batches_per_epoch: int | None = None
    max_eval_batches: int | None = None
    lr: float = 1e-3
    weight_decay: float = 0.05
    warmup_epochs: float = 0.0
    layer_decay: float | None = None
    patience: int | None = None
    seed: int = 0
    init_from: str | None = None
    class_weights: str = "balanced"  # classification: balanced (from the training split's counts) | none
    reference: bool = True  # score a band-power linear model fitted on the same split beside each task
    reference_max_windows: int = 4000  # training/validation windows its features come from (spread subset)


@dataclass
class PhasesSchema:
    pretrain: PretrainSchema = field(default_factory=PretrainSchema)
    contrastive: ContrastivePhaseSchema = field(default_factory=ContrastivePhaseSchema)
    finetune: FinetuneSchema = field(default_factory=FinetuneSchema)


@dataclass
class PipelineSchema:
    name: str = MISSING
    phases: list[str] = MISSING


@dataclass
class TrackingSchema:
    uri: str = "sqlite:///mlflow.db"
    experiment: str = "eegphase"
    artifact_location: str | None = None


@dataclass
class RunSchema:
    seed: int = 0
    input_scale: float = 0.01
    seed_all_phases: bool = False
    cache_dir: str = "cache"
    work_dir: str = "outputs/phases"
    n_jobs: int = 2
    device: str = "auto"
    reuse: bool = True
    progress: bool = True
    tracking: TrackingSchema = field(default_factory=TrackingSchema)
    data: dict[str, Any] = field(default_factory=dict)
    preprocess: dict[str, Any] = field(default_factory=dict)
    windows: dict[str, Any] = field(default_factory=dict)
    split: dict[str, Any] = field(default_factory=dict)
    model: ModelSchema = field(default_factory=ModelSchema)
    aux_task: AuxTaskSchema = field(default_factory=AuxTaskSchema)
    contrastive: ContrastiveSchema = field(default_factory=ContrastiveSchema)
    trainer: TrainerSchema = field(default_factory=TrainerSchema)
    phases: PhasesSchema = field(default_factory=PhasesSchema)
    pipeline: PipelineSchema = MISSING
    tasks: dict[str, Any] = field(default_factory=dict)  # the tasks group's options (conf/tasks/)


PHASES = ("pretrain", "contrastive", "finetune")


def register_schemas() -> None:
    """Store the schemas so that ``conf/config.yaml``'s defaults list can name ``run_schema``."""
    ConfigStore.instance().store(name="run_schema", node=RunSchema)
