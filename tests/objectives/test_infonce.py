"""InfoNCE against a hand computation, and the learnable temperature."""

from __future__ import annotations

import math

import pytest
import torch

from eegphase.objectives.infonce import InfoNCELoss, LearnableTemperature, info_nce

# Two pairs. Normalised: a1=(1,0), a2=(0,1), p1=(1,0), p2=(0.6,0.8); cosines [[1, 0.6], [0, 0.8]].
ANCHOR = torch.tensor([[3.0, 0.0], [0.0, 2.0]])
POSITIVE = torch.tensor([[5.0, 0.0], [3.0, 4.0]])
T = 0.5  # logits = cosine / T = [[2, 1.2], [0, 1.6]]


def _ce(logits: list[float], label: int) -> float:
    return -logits[label] + math.log(sum(math.exp(v) for v in logits))


def test_one_direction_matches_hand_computation():
    expected = (_ce([2.0, 1.2], 0) + _ce([0.0, 1.6], 1)) / 2
    out = info_nce(ANCHOR, POSITIVE, 1 / T, symmetric=False)
    assert out["loss"].item() == pytest.approx(expected, rel=1e-6)


def test_symmetric_averages_both_directions_and_reports_cosines():
    rows = (_ce([2.0, 1.2], 0) + _ce([0.0, 1.6], 1)) / 2
    columns = (_ce([2.0, 0.0], 0) + _ce([1.2, 1.6], 1)) / 2
    out = info_nce(ANCHOR, POSITIVE, 1 / T, symmetric=True)
    assert out["loss"].item() == pytest.approx((rows + columns) / 2, rel=1e-6)
    assert out["pos_cos"].item() == pytest.approx((1.0 + 0.8) / 2)
    assert out["neg_cos"].item() == pytest.approx((0.6 + 0.0) / 2)
    assert out["accuracy"].item() == 1.0


def test_temperature_starts_at_007_is_learnt_and_clamped():
    loss_fn = InfoNCELoss(initial_temperature=0.07)
    assert loss_fn.temperature.temperature == pytest.approx(0.07)
    out = loss_fn(ANCHOR.clone().requires_grad_(True), POSITIVE)
    out["loss"].backward()
    grad = loss_fn.temperature.log_scale.grad
    assert grad is not None and torch.isfinite(grad) and grad.abs() > 0
    with torch.no_grad():
        loss_fn.temperature.log_scale.fill_(50.0)
    assert loss_fn.temperature().item() == pytest.approx(100.0)  # 1/T never above 100
    with pytest.raises(ValueError, match="initial"):
        LearnableTemperature(initial=2.0)


def test_rejects_a_single_pair():
    with pytest.raises(ValueError, match="at least 2"):
        info_nce(ANCHOR[:1], POSITIVE[:1], 10.0)
