"""Multi-task composition and NaN-masked losses: missing targets never turn the loss or gradient into NaN."""

from __future__ import annotations

import math

import pytest
import torch

from eegphase.objectives.multitask import AuxiliaryObjective
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


def test_weighted_aux_terms_and_an_all_missing_target_adds_zero():
    objective = AuxiliaryObjective(
        {"p_factor": {"weight": 0.15, "loss": "l1"}, "sex": {"weight": 0.5, "loss": "ce"}},
        ["p_factor", "age", "sex"],
    )
    features = torch.randn(3, 3, requires_grad=True)
    predictions = {"p_factor": features[:, 0], "sex": features[:, 1:3]}
    y = torch.tensor([[1.0, 10.0, NAN], [NAN, 11.0, NAN], [0.0, 12.0, NAN]])  # nobody's sex known
    losses = objective.losses(predictions, y)
    assert set(losses) == {"aux_p_factor", "aux_sex"}
    pf = ((features[0, 0] - 1.0).abs() + (features[2, 0] - 0.0).abs()) / 2
    assert losses["aux_p_factor"].item() == pytest.approx(0.15 * pf.item(), rel=1e-6)
    assert losses["aux_sex"].item() == 0.0
    total = sum(losses.values())
    assert math.isfinite(total.item())
    total.backward()
    assert torch.isfinite(features.grad).all()
    assert torch.all(features.grad[:, 1:3] == 0)  # the sex head learns nothing from an unlabelled batch


def test_age_is_standardised_and_unknown_tasks_are_named():
    objective = AuxiliaryObjective({"age": {"weight": 1.0, "loss": "mse"}}, ["p_factor", "age", "sex"])
    y = torch.tensor([[0.0, 16.0, 0.0]])
    assert objective.losses({"age": torch.tensor([1.0])}, y)["aux_age"].item() == pytest.approx(0.0)
    assert not AuxiliaryObjective({}, ["p_factor"])
    with pytest.raises(KeyError, match="iq"):
        AuxiliaryObjective({"iq": {"weight": 1.0, "loss": "mse"}}, ["p_factor", "age", "sex"])
    with pytest.raises(ValueError, match="unknown loss"):
        loss_by_name("hinge")
