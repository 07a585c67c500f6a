"""Encoder + head as fine-tuning builds it from a model config."""

from __future__ import annotations

import pytest
import torch

from eegphase.models.predictor import build_predictor


@pytest.mark.parametrize(
    "model_cfg",
    [{"name": "eegnex"}, {"name": "labram", "size": "tiny"}, {"name": "signal_jepa", "size": "tiny"}],
)
def test_predictor_outputs_one_value_per_window(model_cfg):
    torch.manual_seed(0)
    model = build_predictor(model_cfg, n_outputs=1).eval()
    out = model(torch.randn(3, 129, 200))
    assert out.shape == (3, 1) and torch.isfinite(out).all()
    assert any(k.startswith("encoder.") for k in model.state_dict())


def test_classification_head_and_bad_task():
    model = build_predictor({"name": "labram", "size": "tiny"}, n_outputs=2, task="classification").eval()
    assert model(torch.randn(2, 129, 200)).shape == (2, 2)
    with pytest.raises(ValueError, match="ordinal"):
        build_predictor({"name": "eegnex"}, task="ordinal")
