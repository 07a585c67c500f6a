"""Every option of every config group composes, passes the start-up check and builds what it names."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from eegphase.config import CONF_DIR
from eegphase.data.datasets import TARGETS
from eegphase.data.preprocess import PreprocessConfig
from eegphase.data.sources import readers_from_config
from eegphase.data.splits import SplitConfig
from eegphase.data.windows import WindowConfig
from eegphase.engine.precision import make_precision
from eegphase.models.predictor import build_predictor
from eegphase.objectives.multitask import AuxiliaryObjective
from eegphase.phases.common import PhaseContext, trainer_config
from eegphase.pipeline.plan import check_run_config, needed_modes
from eegphase.pipeline.schema import register_schemas

# group folder -> how a command line selects one of its options
GROUPS = {
    "aux_task": "aux_task",
    "contrastive": "contrastive",
    "data": "data",
    "debug": "debug",
    "experiment": "experiment",
    "hparams_search": "hparams_search",
    "model": "model",
    "pipeline": "+pipeline",
    "preprocess": "preprocess",
    "split": "split",
    "trainer": "trainer",
    "windows": "windows",
    "tasks": "tasks",
    "hydra/launcher": "hydra/launcher",
}
EXTRA = {  # required values, and what a dataset without movies or challenge windows runs instead
    "data=folder": ["data.root=/data/mine", "contrastive=none", "tasks=recording_label"],
    "data=tuh": ["contrastive=none", "tasks=subject_column", "tasks.column=age"],
    "tasks=subject_column": ["tasks.column=Age"],
}


def _options() -> list[tuple[str, str]]:
    found = [(group, path.stem) for group in GROUPS for path in sorted((CONF_DIR / group).glob("*.yaml"))]
    folders = {str(p.parent.relative_to(CONF_DIR)) for p in CONF_DIR.rglob("*.yaml") if p.parent != CONF_DIR}
    # every group folder is covered (phase@phases.* and trainer/phase@phases.*.trainer are composed by every
    # config; callbacks by every run; debug/data by a debug option with its data, see the smoke test below)
    exempt = {"phase", "trainer/phase", "hydra/callbacks", "debug/data"}
    assert folders - set(GROUPS) <= exempt, folders - set(GROUPS)
    return found


def _compose(*overrides: str):
    register_schemas()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("config", overrides=list(overrides), return_hydra_config=True)


def _build_everything(cfg, work_dir: Path) -> None:
    """Construct each object the config names, with the constructors the phases use."""
    plain = {k: cfg[k] for k in ("data", "preprocess", "windows", "split")}
    assert readers_from_config(plain["data"])
    PreprocessConfig.from_mapping(plain["preprocess"])
    WindowConfig.from_mapping(plain["windows"])
    SplitConfig.from_mapping(plain["split"])
    phases = check_run_config(cfg)
    assert phases and needed_modes(cfg, phases)
    for phase in phases:
        ctx = PhaseContext(
            cfg=cfg, name=phase, seed=0, work_dir=work_dir, init_from=None, device=torch.device("cpu")
        )
        make_precision(trainer_config(ctx, work_dir).precision, "cpu")
    if "pretrain" in phases:
        AuxiliaryObjective(dict(cfg.aux_task.tasks), TARGETS[str(cfg.phases.pretrain.mode)])


@pytest.mark.parametrize(("group", "option"), _options(), ids=lambda x: str(x))
def test_option_composes_checks_and_builds(group, option, tmp_path):
    selected = f"{GROUPS[group]}={option}"
    overrides = [selected, *EXTRA.get(selected, [])]
    if group != "pipeline":
        overrides.append("+pipeline=full")
    cfg = _compose(*overrides)
    if group == "model" and cfg.model.pretrain_objective is None:  # nothing to pretrain it with
        cfg = _compose(selected, "+pipeline=baseline")
    assert cfg.hydra.runtime.choices[group] == option
    if group == "model":  # the model itself, for real (labram_huge: 369M parameters, ~10 s)
        model = build_predictor(OmegaConf.to_container(cfg.model, resolve=True))
        assert sum(p.numel() for p in model.parameters()) > 0
    _build_everything(cfg, tmp_path)


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("model.encoder._target_=eegphase.models.LaBraMM", "'eegphase.models.LaBraMM' not found"),
        ("contrastive.pair_mode=same_movie", "contrastive.pair_mode='same_movie'"),
        ("phases.finetune.tasks.challenge1.kind=ordinal", "phases.finetune.tasks.challenge1.kind='ordinal'"),
        ("phases.finetune.tasks.challenge1.loss=hinge", "phases.finetune.tasks.challenge1.loss"),
        ("phases.finetune.tasks.challenge1.mode=challenge3", "unknown window mode(s) ['challenge3']"),
        ("phases.pretrain.objective=jepa", "objective=jepa needs model=signal_jepa"),
        ("model=eegnex", "model 'eegnex' has no self-supervised objective"),
        ("trainer.precision=fp8", "trainer.precision='fp8'"),
        ("data.sources.hbn.kind=edf", "unknown reader kind 'edf'"),
        ("+windows.challenge2_minutes=15", "challenge2_minutes"),
        (
            "+phases.finetune.tasks.age={mode: challenge2, target: age, knd: regression}",
            "tasks.age: Key 'knd'",
        ),
        (
            "+phases.finetune.tasks.age={mode: challenge2, target: age, crop_s: long}",
            "tasks.age: Value 'long'",
        ),
    ],
)
def test_a_name_that_does_not_exist_fails_at_start_up_by_name(override, named):
    cfg = _compose("+pipeline=full", override)
    with pytest.raises((ValueError, KeyError)) as info:
        check_run_config(cfg)
    assert named in str(info.value), str(info.value)


def test_a_task_added_on_the_command_line_is_typed_and_completed():
    """`+phases.finetune.tasks.x={...}` (OmegaConf refused a plain dict in a dict of dataclasses before)."""
    cfg = _compose("+pipeline=baseline", "+phases.finetune.tasks.age={mode: challenge2, target: age}")
    check_run_config(cfg)
    task = cfg.phases.finetune.tasks.age
    assert (task.kind, task.loss, task.crop_s, task.name) == ("regression", None, None, None)
    assert set(cfg.phases.finetune.tasks) == {"challenge1", "challenge2", "age"}


@pytest.mark.parametrize(
    "order", [("experiment=ablation", "debug=smoke"), ("debug=smoke", "experiment=ablation")]
)
def test_debug_shrinks_an_experiment_instead_of_replacing_it(order):
    """`-m experiment=ablation debug=smoke` is the ablation grid, small (two experiments kept only the last)."""
    cfg = _compose(*order, "+pipeline=full", "seed=2")
    assert (
        cfg.hydra.runtime.choices["experiment"] == "ablation"
        and cfg.hydra.runtime.choices["debug"] == "smoke"
    )
    assert cfg.seed_all_phases and cfg.split.seed == 2  # the experiment's
    assert cfg.hydra.sweeper.params["+pipeline"] == "full,no_contrastive,no_aux,baseline,full_tuh"
    # the debug shrink
    assert cfg.model.name == "labram_tiny" and cfg.phases.pretrain.max_batches_per_epoch == 2
    assert cfg.data.root == "data/synthetic-smoke" and check_run_config(cfg)


@pytest.mark.parametrize(
    ("data", "root", "generated"),
    [
        (["data=hbn"], "data/synthetic-smoke", {"hbn"}),
        (["data=hbn_tuh", "windows.mixed_ratio={hbn: null, tuh: 0.3}"], "data/synthetic-smoke", {"hbn"}),
        (["+pipeline=full_tuh"], "data/synthetic-smoke", {"hbn", "tuh"}),
        (["data=folder", "data.root=/data/mine", "contrastive=none", "tasks=recording_label"], "/data/mine", set()),
        (["data=folder", "data.root=/data/mine", "contrastive=none", "tasks=recording_label", "~data.generate"],
         "/data/mine", set()),
        (["data=tuh", "contrastive=none", "tasks=subject_column", "tasks.column=age"], "data/synthetic-tuh", set()),
    ],
    ids=["hbn", "hbn_tuh", "full_tuh", "folder", "folder-without-generate", "tuh"],
)  # fmt: skip
def test_smoke_shrinks_a_run_on_any_data(data, root, generated):
    """debug=smoke swaps in its generated dataset for HBN only; on other data it keeps the recordings and
    shrinks the rest (it refused to run on a folder before)."""
    pipeline = [] if "+pipeline=full_tuh" in data else ["+pipeline=full"]
    cfg = _compose(*pipeline, *data, "debug=smoke")
    assert cfg.data.root == root and set(cfg.data.get("generate") or {}) == generated
    assert cfg.model.name == "labram_tiny" and cfg.phases.finetune.max_batches_per_epoch == 3
    assert check_run_config(cfg)
    plain = _compose(*pipeline, *data)
    assert plain.model.name != "labram_tiny" and plain.data.root == (
        "data/synthetic-hbn" if generated else root
    )
