"""The end-to-end fine-tuning recipe: layer decay for an initialised encoder, not for a from-scratch one."""

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir

from eegphase.phases.common import PhaseContext
from eegphase.phases.finetune import end_to_end_trainer_config
from eegphase.pipeline.schema import register_schemas

CONF_DIR = Path(__file__).resolve().parents[2] / "conf"


def _layer_decay(init_from, *overrides: str):
    register_schemas()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["+pipeline=full", *overrides])
    ctx = PhaseContext(
        cfg=cfg, name="finetune", seed=0, work_dir=Path("."), init_from=init_from, device=torch.device("cpu")
    )
    return end_to_end_trainer_config(ctx, Path("unused")).optimizer.layer_decay


@pytest.mark.parametrize(
    ("init_from", "overrides", "expected"),
    [
        ("runs:/abc/checkpoints/best.pt", ("model=labram_base",), 0.65),  # LaBraM's fine-tuning recipe
        (None, ("model=labram_base",), None),  # from scratch: every block at the full rate
        (None, ("model=labram_base", "phases.finetune.layer_decay_from_scratch=true"), 0.65),
        ("runs:/abc/checkpoints/best.pt", ("model=eegnex",), None),  # EEGNeX sets no layer decay
        # the CPU-sized LaBraMs (make run's default) fine-tune without it (conf/model/labram_small.yaml)
        ("runs:/abc/checkpoints/best.pt", (), None),
        ("runs:/abc/checkpoints/best.pt", ("model=labram_tiny",), None),
    ],
)
def test_layer_decay_applies_to_initialised_encoders_only(init_from, overrides, expected):
    assert _layer_decay(init_from, *overrides) == expected
