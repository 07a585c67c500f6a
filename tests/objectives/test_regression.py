"""Regression losses run in float32 whatever the prediction's dtype."""

from __future__ import annotations

import pytest
import torch


def test_a_bf16_prediction_is_scored_against_the_float32_target():
    """A response time of 1.2 s is 1.203125 in bf16: the loss must see the 0.003 s error, not round it away."""
    from eegphase.objectives.regression import masked_regression_loss

    pred = torch.tensor([1.203125], dtype=torch.bfloat16, requires_grad=True)
    loss = masked_regression_loss(pred, torch.tensor([1.2]))
    assert loss.dtype == torch.float32
    assert loss.item() == pytest.approx((1.203125 - 1.2) ** 2, rel=1e-4)
    loss.backward()
    assert pred.grad is not None and pred.grad.dtype == torch.bfloat16
