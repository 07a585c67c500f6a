"""Structured-config schemas: a misspelled key, a wrong type or a missing value fails at start-up, by name.

The schemas hold types only: every default lives in the YAML under ``conf/`` (``MISSING`` here), so that a
value is written in one place (``tests/pipeline/test_defaults.py`` checks it). A field keeps a default here
only where no config file sets it (a fine-tuning task's optional keys).
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
    name: str = MISSING  # the short name (model=<name>): labels runs and messages
    encoder: dict[str, Any] = MISSING  # {_target_: an nn.Module class, **its arguments} (hydra instantiate)
    pretrain_objective: str | None = MISSING  # mem | jepa | None (the model has none)
    pretrain_lr: float | None = MISSING  # phases.pretrain.lr (None: the model has no pretraining objective)
    finetune_layer_decay: float | None = MISSING  # per-block lr decay when fine-tuned (LaBraM-base: 0.65)
    channel_adapter: str = MISSING  # zero_pad (datasets pad onto HydroCel-129) | perceiver (learned)


@dataclass
class AuxTaskSpec:
    weight: float = MISSING
    loss: str = MISSING


@dataclass
class AuxTaskSchema:
    tasks: dict[str, AuxTaskSpec] = field(default_factory=dict)


@dataclass
class ContrastiveSchema:
    enabled: bool = MISSING
    pair_mode: str = MISSING


@dataclass
class TrainerSchema:
    """The engine settings (conf/trainer/default.yaml); each phase holds its own copy under
    ``phases.<name>.trainer``, every key following the global one unless that phase overrides it."""

    precision: str = MISSING
    compile: bool = MISSING
    grad_accum_steps: int = MISSING
    grad_clip_norm: float | None = MISSING
    ema_decay: float | None = MISSING
    log_every: int = MISSING
    num_workers: int = MISSING


@dataclass
class PretrainSchema:
    objective: str | None = MISSING
    mode: str = MISSING
    epochs: int = MISSING
    tokenizer_epochs: int = MISSING
    tokenizer_size: str = MISSING
    tokenizer_phase_weight: float = MISSING
    n_codes: int = MISSING
    mask_ratio: float = MISSING
    batch_size: int = MISSING
    max_batches_per_epoch: int | None = MISSING
    max_eval_batches: int | None = MISSING
    lr: float | None = MISSING  # model.pretrain_lr (None: a model without pretraining)
    weight_decay: float = MISSING
    warmup_epochs: float = MISSING
    seed: int = MISSING
    init_from: str | None = MISSING
    trainer: TrainerSchema = field(default_factory=TrainerSchema)  # conf/trainer/phase/inherit.yaml


@dataclass
class ContrastivePhaseSchema:
    epochs: int = MISSING
    batch_size: int = MISSING
    max_batches_per_epoch: int | None = MISSING
    max_eval_batches: int | None = MISSING
    projection_dim: int = MISSING
    temperature: float = MISSING
    lr: float = MISSING
    weight_decay: float = MISSING
    warmup_epochs: float = MISSING
    seed: int = MISSING
    init_from: str | None = MISSING
    trainer: TrainerSchema = field(default_factory=TrainerSchema)  # conf/trainer/phase/inherit.yaml


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
    epochs: int = MISSING
    freeze_epochs: int = MISSING
    batch_size: int = MISSING
    max_batches_per_epoch: int | None = MISSING
    max_eval_batches: int | None = MISSING
    lr: float = MISSING
    weight_decay: float = MISSING
    warmup_epochs: float = MISSING
    layer_decay: float | None = MISSING
    layer_decay_from_scratch: bool = MISSING  # also decay a from-scratch encoder's lower layers
    patience: int | None = MISSING
    seed: int = MISSING
    init_from: str | None = MISSING
    class_weights: str = MISSING  # classification: balanced (from the training split's counts) | none
    reference: bool = MISSING  # score a band-power linear model fitted on the same split beside each task
    reference_max_windows: int = MISSING  # training/validation windows its features come from (spread subset)
    readout: str = MISSING  # refit: the last head layer refitted in closed form after training | sgd
    readout_max_windows: int | None = MISSING  # training/validation windows the refit reads (spread subset)
    labelled_subjects: int | None = MISSING  # K training subjects' labels only (null: all); data.splits
    trainer: TrainerSchema = field(default_factory=TrainerSchema)  # conf/trainer/phase/inherit.yaml


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
class RegistrySchema:
    enabled: bool = MISSING
    alias: str | None = MISSING
    models: dict[str, str] = field(default_factory=dict)  # fine-tuning task -> registered model name


@dataclass
class TrackingSchema:
    uri: str = MISSING
    experiment: str = MISSING
    artifact_location: str | None = MISSING
    log_models: bool = MISSING
    registry: RegistrySchema = field(default_factory=RegistrySchema)


@dataclass
class RunSchema:
    seed: int = MISSING
    input_scale: float = MISSING
    seed_all_phases: bool = MISSING
    cache_dir: str = MISSING
    work_dir: str = MISSING
    n_jobs: int = MISSING
    device: str = MISSING
    reuse: bool = MISSING
    progress: bool = MISSING
    cpu_allocator: str = MISSING
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
