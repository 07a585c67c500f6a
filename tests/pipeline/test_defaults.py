"""Each default is written once (the YAML under conf/), and each phase trains with its own trainer settings."""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import MISSING, OmegaConf

from eegphase.config import CONF_DIR
from eegphase.engine.loop import TrainerConfig
from eegphase.phases.common import LOADER_KEYS, PhaseContext, trainer_config
from eegphase.pipeline import schema
from eegphase.pipeline.fingerprint import phase_fingerprint
from eegphase.pipeline.schema import PHASES, register_schemas

# config file (or the files of a group) -> the schema node it fills
FILLS = {
    "config.yaml": schema.RunSchema,
    "trainer/default.yaml": schema.TrainerSchema,
    "trainer/phase/inherit.yaml": schema.TrainerSchema,
    "phase/pretrain.yaml": schema.PretrainSchema,
    "phase/contrastive.yaml": schema.ContrastivePhaseSchema,
    "phase/finetune.yaml": schema.FinetuneSchema,
    "contrastive/*.yaml": schema.ContrastiveSchema,
    "aux_task/*.yaml": schema.AuxTaskSchema,
    "model/*.yaml": schema.ModelSchema,
}


def _has_default(f: dataclasses.Field) -> bool:
    """A value written in the schema: a default other than MISSING (empty containers do not count)."""
    if f.default is not dataclasses.MISSING:
        return f.default is not MISSING
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory() not in ({}, [])
    return False


def _written_twice(values: dict, node: type, where: str) -> list[str]:
    """Keys that ``values`` (a config file's mapping) sets and the schema ``node`` also gives a default."""
    found = []
    fields, types = {f.name: f for f in dataclasses.fields(node)}, typing.get_type_hints(node)
    for key, value in values.items():
        if key not in fields:
            continue
        f = fields[key]
        if dataclasses.is_dataclass(types[key]) and isinstance(value, dict):
            found += _written_twice(value, types[key], f"{where}.{key}")
        elif typing.get_origin(types[key]) is dict and dataclasses.is_dataclass(
            typing.get_args(types[key])[1]
        ):
            for name, item in value.items():  # e.g. aux_task.tasks: dict[str, AuxTaskSpec]
                found += _written_twice(item, typing.get_args(types[key])[1], f"{where}.{key}.{name}")
        elif _has_default(f):
            found.append(f"{where}.{key}")
    return found


def _files() -> list[tuple[Path, type]]:
    return [(path, node) for pattern, node in FILLS.items() for path in sorted(CONF_DIR.glob(pattern))]


def _compose(*overrides: str):
    register_schemas()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides))


@pytest.mark.parametrize(
    ("path", "node"), _files(), ids=lambda x: str(x.relative_to(CONF_DIR)) if isinstance(x, Path) else ""
)
def test_no_value_is_both_a_schema_default_and_in_a_config_file(path, node):
    values = OmegaConf.to_container(OmegaConf.load(path))
    values.pop("defaults", None)
    twice = _written_twice(values, node, node.__name__)
    assert not twice, (
        f"{path.relative_to(CONF_DIR)} sets {twice}, which {node.__name__} also defaults: keep one"
    )


def test_the_engine_has_no_default_for_what_the_trainer_config_sets():
    yaml_keys = set(OmegaConf.load(CONF_DIR / "trainer" / "default.yaml")) - set(LOADER_KEYS)
    defaulted = {
        f.name
        for f in dataclasses.fields(TrainerConfig)
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    }
    assert yaml_keys <= {f.name for f in dataclasses.fields(TrainerConfig)}
    assert not yaml_keys & defaulted, (
        f"TrainerConfig defaults {sorted(yaml_keys & defaulted)} that the YAML sets"
    )


def test_every_trainer_key_is_in_the_schema_and_followed_by_each_phase():
    trainer = OmegaConf.load(CONF_DIR / "trainer" / "default.yaml")
    inherit = OmegaConf.load(CONF_DIR / "trainer" / "phase" / "inherit.yaml")
    assert set(trainer) == {f.name for f in dataclasses.fields(schema.TrainerSchema)}
    assert {key: inherit._get_node(key)._value() for key in inherit} == {
        k: f"${{trainer.{k}}}" for k in trainer
    }


def test_the_default_run_config_leaves_no_value_unset():
    assert OmegaConf.missing_keys(_compose("+pipeline=full")) == set()


def _phase_trainers(cfg, tmp_path: Path) -> dict[str, TrainerConfig]:
    def config(phase: str) -> TrainerConfig:
        ctx = PhaseContext(
            cfg=cfg, name=phase, seed=0, work_dir=tmp_path, init_from=None, device=torch.device("cpu")
        )
        return trainer_config(ctx, tmp_path)

    return {phase: config(phase) for phase in PHASES}


def test_a_phase_overrides_the_global_trainer_for_itself_only(tmp_path):
    cfg = _compose(
        "+pipeline=full",
        "trainer.log_every=7",
        "trainer.grad_clip_norm=1.5",
        "phases.pretrain.trainer.precision=bf16",
        "phases.finetune.trainer.precision=fp32",
        "phases.finetune.trainer.grad_clip_norm=null",
        "phases.contrastive.trainer.num_workers=2",
    )
    engine = _phase_trainers(cfg, tmp_path)
    effective = {
        phase: (c.precision, c.log_every, c.grad_clip_norm, c.compile, c.grad_accum_steps, c.ema_decay)
        for phase, c in engine.items()
    }
    assert effective == {
        "pretrain": ("bf16", 7, 1.5, False, 1, None),
        "contrastive": ("auto", 7, 1.5, False, 1, None),
        "finetune": ("fp32", 7, None, False, 1, None),
    }
    assert [cfg.phases[p].trainer.num_workers for p in PHASES] == [0, 2, 0]


def _fingerprints(*overrides: str) -> dict[str, str]:
    cfg = _compose("+pipeline=full", *overrides)
    return {phase: phase_fingerprint(cfg, phase, 0, None, "data") for phase in PHASES}


def test_a_phase_trainer_override_enters_that_phase_fingerprint_only():
    base = _fingerprints()
    pretrain_bf16 = _fingerprints("phases.pretrain.trainer.precision=bf16")
    assert pretrain_bf16["pretrain"] != base["pretrain"]
    assert {p: pretrain_bf16[p] for p in ("contrastive", "finetune")} == {
        p: base[p] for p in ("contrastive", "finetune")
    }
    everywhere = _fingerprints("trainer.precision=bf16")
    assert all(everywhere[p] != base[p] for p in PHASES)
    assert everywhere["pretrain"] == pretrain_bf16["pretrain"]  # the same effective settings, the same phase


def test_the_fine_tuning_layer_decay_enters_the_finetune_fingerprint_only():
    base, decayed = _fingerprints(), _fingerprints("model.finetune_layer_decay=0.65")
    assert decayed["finetune"] != base["finetune"]
    assert {p: decayed[p] for p in ("pretrain", "contrastive")} == {
        p: base[p] for p in ("pretrain", "contrastive")
    }
    wider = _fingerprints("model.encoder.embed_dim=96")  # any other model key still enters every phase
    assert all(wider[p] != base[p] for p in PHASES)


def test_the_pretraining_lr_enters_the_pretrain_fingerprint_only():
    """Upstream fingerprints carry it further down a pipeline; the baseline's fine-tuning is not retrained."""
    base, faster = _fingerprints(), _fingerprints("model.pretrain_lr=1.0e-2")
    assert faster["pretrain"] != base["pretrain"]
    assert {p: faster[p] for p in ("contrastive", "finetune")} == {
        p: base[p] for p in ("contrastive", "finetune")
    }
    assert _compose("+pipeline=full", "model.pretrain_lr=1.0e-2").phases.pretrain.lr == 1.0e-2


@pytest.mark.parametrize("option", sorted(path.stem for path in CONF_DIR.glob("model/*.yaml")))
def test_every_model_config_sets_every_model_key(option):
    """The model schema has no defaults: each conf/model file (or the file it extends) writes them all."""
    assert OmegaConf.missing_keys(_compose("+pipeline=full", f"model={option}").model) == set()
