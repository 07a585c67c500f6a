"""What a run config asks for (its phases, its data modes), checked at start-up before anything trains.

Structured-config schemas catch misspelled keys and wrong types; ``check_run_config`` catches names that do
not exist (a model, a window mode, a loss, a pair mode, a reader kind...) in seconds, instead of after hours of
pretraining when the phase that uses them starts. Each check uses the constructor or registry that the phase
itself uses, so the two cannot disagree.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from eegphase.data.datasets import TARGETS
from eegphase.data.preprocess import PreprocessConfig
from eegphase.data.sources import readers_from_config
from eegphase.data.splits import SplitConfig
from eegphase.data.windows import MODES, WindowConfig
from eegphase.engine.precision import PRECISIONS
from eegphase.models.registry import resolve_encoder
from eegphase.objectives.movie_pairs import PAIR_MODES
from eegphase.objectives.regression import loss_by_name
from eegphase.phases.pretrain import AuxiliaryObjective, check_objective
from eegphase.pipeline.schema import PHASES

TASK_KINDS = ("regression", "classification")


def pipeline_phases(cfg: DictConfig) -> list[str]:
    """The phases to run, in order; ``contrastive=none`` drops the contrastive phase."""
    if "pipeline" not in cfg or OmegaConf.is_missing(cfg, "pipeline"):
        raise ValueError("no pipeline chosen: add +pipeline=full (or no_contrastive, no_aux, baseline)")
    phases = list(cfg.pipeline.phases)
    unknown = [p for p in phases if p not in PHASES]
    if unknown:
        raise ValueError(f"pipeline.phases has unknown phase(s) {unknown}; known: {list(PHASES)}")
    if not cfg.contrastive.enabled:
        phases = [p for p in phases if p != "contrastive"]
    return phases


def needed_modes(cfg: DictConfig, phases: list[str]) -> list[str]:
    """The window modes (tables of the cache) the phases read."""
    modes = []
    if "pretrain" in phases:
        modes.append(str(cfg.phases.pretrain.mode))
    if "contrastive" in phases:
        modes.append("movies")
    if "finetune" in phases:
        modes.extend(str(task.mode) for task in cfg.phases.finetune.tasks.values())
    return list(dict.fromkeys(modes))


def _plain(node) -> dict:
    return OmegaConf.to_container(node, resolve=True) if node is not None else {}


def check_run_config(cfg: DictConfig) -> list[str]:
    """Raise on the first name in ``cfg`` that does not exist (naming its key); returns the phases to run."""
    phases = pipeline_phases(cfg)
    try:
        readers_from_config(_plain(cfg.data))  # readers open no file until asked to list recordings
    except (KeyError, ValueError, TypeError) as exc:
        raise ValueError(f"data ({cfg.data.get('name', '?')}): {exc}") from exc
    PreprocessConfig.from_mapping(_plain(cfg.preprocess))
    WindowConfig.from_mapping(_plain(cfg.windows))
    SplitConfig.from_mapping(_plain(cfg.split))
    modes = needed_modes(cfg, phases)
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ValueError(f"unknown window mode(s) {unknown} in phases.*.mode/tasks; known: {list(MODES)}")
    try:
        resolve_encoder(str(cfg.model.name), cfg.model.get("size"))
    except ValueError as exc:
        raise ValueError(f"model: {exc}") from exc
    if cfg.trainer.precision not in PRECISIONS:
        raise ValueError(f"trainer.precision={cfg.trainer.precision!r}; choose one of {PRECISIONS}")
    if "pretrain" in phases:
        pretrain = cfg.phases.pretrain
        check_objective(pretrain.objective, str(cfg.model.name))
        AuxiliaryObjective(_plain(cfg.aux_task.tasks), TARGETS[str(pretrain.mode)])
    if "contrastive" in phases and cfg.contrastive.pair_mode not in PAIR_MODES:
        raise ValueError(f"contrastive.pair_mode={cfg.contrastive.pair_mode!r}; choose one of {PAIR_MODES}")
    if "finetune" in phases:
        tasks = cfg.phases.finetune.tasks
        if not tasks:
            raise ValueError("phases.finetune.tasks is empty: name at least one task (e.g. challenge1)")
        for name, task in tasks.items():
            if task.kind not in TASK_KINDS:
                raise ValueError(
                    f"phases.finetune.tasks.{name}.kind={task.kind!r}; choose one of {TASK_KINDS}"
                )
            try:
                loss_by_name(str(task.loss))
            except (KeyError, ValueError) as exc:
                raise ValueError(f"phases.finetune.tasks.{name}.loss: {exc}") from exc
    return phases
