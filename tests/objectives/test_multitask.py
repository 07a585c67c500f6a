"""Multi-task composition and NaN-masked losses: missing targets never turn the loss or gradient into NaN."""

from __future__ import annotations

import math

import pytest
import torch

from eegphase.objectives.multitask import MultiTaskLoss, TaskSpec
from eegphase.objectives.regression import loss_by_name, masked_cross_entropy, masked_regression_loss

NAN = float("nan")


@pytest.mark.parametrize("name", ["mse", "l1", "huber", "ce"])
def test_all_missing_target_gives_zero_loss_and_finite_gradient(name):
    pred = torch.randn(4, 2 if name == "ce" else 1, requires_grad=True)
    loss = loss_by_name(name)(pred, torch.full((4,), NAN))
    assert loss.item() == 0.0
    loss.backward()
    assert torch.isfinite(pred.grad).all()


def test_partly_missing_targets_average_over_the_present_ones():
    pred = torch.tensor([1.0, 2.0, 3.0, 4.0])
    target = torch.tensor([0.0, NAN, 5.0, NAN])
    assert masked_regression_loss(pred, target, "mse").item() == pytest.approx((1.0 + 4.0) / 2)
    assert masked_regression_loss(pred, target, "l1").item() == pytest.approx((1.0 + 2.0) / 2)
    # Huber, delta 1: 0.5 for |e|=1, 2 - 0.5 = 1.5 for |e|=2
    assert masked_regression_loss(pred, target, "huber").item() == pytest.approx((0.5 + 1.5) / 2)


def test_cross_entropy_skips_missing_labels():
    logits = torch.tensor([[0.0, 1.0], [5.0, -5.0], [2.0, 0.0]])
    labels = torch.tensor([1.0, NAN, 0.0])
    expected = (-1.0 + math.log(1 + math.e) + (-2.0 + math.log(math.exp(2.0) + 1.0))) / 2
    assert masked_cross_entropy(logits, labels).item() == pytest.approx(expected, rel=1e-6)
    with pytest.raises(ValueError, match="out of range"):
        masked_cross_entropy(logits, torch.tensor([0.0, 1.0, 2.0]))


def test_total_is_main_plus_weighted_aux_and_all_missing_aux_adds_zero():
    objective = MultiTaskLoss(
        TaskSpec("rt", "mse"), [TaskSpec("p_factor", "l1", 0.15), TaskSpec("sex", "ce", 0.5)]
    )
    features = torch.randn(3, 4, requires_grad=True)
    predictions = {
        "rt": features[:, 0],
        "p_factor": features[:, 1:2],
        "sex": features[:, 2:4],
    }
    targets = {
        "rt": torch.tensor([0.5, 0.1, -0.2]),
        "p_factor": torch.tensor([1.0, NAN, 0.0]),
        "sex": torch.full((3,), NAN),  # nobody's sex known in this batch
    }
    result = objective(predictions, targets)
    rt = ((features[:, 0] - targets["rt"]) ** 2).mean()
    pf = ((features[0, 1] - 1.0).abs() + (features[2, 1] - 0.0).abs()) / 2
    assert result.total.item() == pytest.approx((rt + 0.15 * pf).item(), rel=1e-6)
    assert set(result.terms) == {"rt", "p_factor", "sex"}
    assert result.terms["sex"].item() == 0.0
    assert result.weights["p_factor"] == 0.15
    assert math.isfinite(result.log_dict()["loss/total"])
    result.total.backward()
    assert torch.isfinite(features.grad).all()
    assert torch.all(features.grad[:, 2:4] == 0)  # the sex head learns nothing from an unlabelled batch


def test_missing_prediction_and_duplicate_names_are_named():
    objective = MultiTaskLoss(TaskSpec("rt"), [TaskSpec("age", weight=0.1)])
    with pytest.raises(KeyError, match="age"):
        objective({"rt": torch.zeros(2)}, {"rt": torch.zeros(2), "age": torch.zeros(2)})
    with pytest.raises(ValueError, match="rt"):
        MultiTaskLoss(TaskSpec("rt"), [TaskSpec("rt")])
    with pytest.raises(ValueError, match="unknown loss"):
        loss_by_name("hinge")
