"""What classification runs report: class weights from counts, weighted cross-entropy, AUROC, group-level
balanced accuracy, the predicted-class share, and the band-power logistic reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from eegphase.objectives.metrics import (
    auroc,
    balanced_accuracy,
    constant_within,
    grouped_balanced_accuracy,
    grouped_nrmse,
    predicted_class_share,
)
from eegphase.objectives.reference import fit_logistic_reference
from eegphase.objectives.regression import balanced_class_weights, masked_cross_entropy


def test_class_weights_come_from_the_counts():
    labels = np.array([0, 0, 0, 0, 0, 0, 1, 1, np.nan, -1])  # 6 of class 0, 2 of class 1, 2 unlabelled
    weights = balanced_class_weights(labels, 3)
    # n / (classes seen * count): 8 / (2 * 6) and 8 / (2 * 2); a class with no rows weighs nothing
    assert weights.tolist() == pytest.approx([8 / 12, 2.0, 0.0])
    assert (weights[:2] * torch.tensor([6.0, 2.0])).tolist() == pytest.approx([4.0, 4.0])  # equal totals
    with pytest.raises(ValueError, match="no labelled rows"):
        balanced_class_weights([np.nan, -1], 2)


def test_weighted_cross_entropy_is_torchs_weighted_mean_over_labelled_rows():
    torch.manual_seed(0)
    logits = torch.randn(6, 3)
    target = torch.tensor([0.0, 1.0, 2.0, 1.0, float("nan"), 0.0])
    weight = torch.tensor([0.5, 2.0, 1.0])
    labelled = ~torch.isnan(target)
    expected = F.cross_entropy(logits[labelled], target[labelled].long(), weight=weight)
    assert masked_cross_entropy(logits, target, weight).item() == pytest.approx(expected.item(), rel=1e-6)
    assert masked_cross_entropy(logits, target).item() == pytest.approx(
        F.cross_entropy(logits[labelled], target[labelled].long()).item(), rel=1e-6
    )
    # a majority-only predictor loses more under balanced weights when the minority class is missed
    y = torch.tensor([0.0] * 9 + [1.0])
    majority = torch.tensor([[2.0, -2.0]] * 10)
    balanced = balanced_class_weights(y, 2)
    assert masked_cross_entropy(majority, y, balanced) > 2 * masked_cross_entropy(majority, y)


def test_auroc_ranks_scores_and_averages_ties():
    y = np.array([0, 0, 1, 1])
    assert auroc(y, np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert auroc(y, np.array([0.9, 0.8, 0.2, 0.1])) == 0.0
    assert auroc(y, np.array([0.5, 0.5, 0.5, 0.5])) == 0.5
    assert auroc(y, np.array([0.1, 0.6, 0.4, 0.9])) == 0.75  # 3 of the 4 (pos, neg) pairs in order
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.6, 0.4], [0.1, 0.9]])
    assert auroc(y, proba) == 0.75  # class probabilities: the positive column is used
    three = np.eye(3)[[0, 1, 2, 0, 1, 2]]
    assert auroc([0, 1, 2, 0, 1, 2], three) == 1.0
    assert np.isnan(auroc([1, 1], np.array([0.2, 0.3])))


def test_group_level_scores_use_mean_window_probabilities():
    y = np.array([0, 0, 0, 1, 1, 1])
    groups = np.array(["a", "a", "a", "b", "b", "b"])
    proba = np.array([[0.9, 0.1], [0.4, 0.6], [0.45, 0.55], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    assert balanced_accuracy(y, proba.argmax(1)) == pytest.approx((1 / 3 + 2 / 3) / 2)
    # a: mean p(1) = 0.417 -> 0; b: mean p(1) = 0.633 -> 1: both recordings right
    assert grouped_balanced_accuracy(y, proba, groups) == 1.0
    assert constant_within(y, groups) and not constant_within(y, np.array(["a", "b"] * 3))
    with pytest.raises(ValueError, match="varies inside a group"):
        grouped_balanced_accuracy(y, proba, np.array(["a", "b"] * 3))
    ages = np.array([30.0, 30.0, 50.0, 50.0])
    pred = np.array([20.0, 40.0, 45.0, 55.0])  # noisy per window, exact as subject means
    assert grouped_nrmse(ages, pred, ["s1", "s1", "s2", "s2"]) == 0.0


def test_predicted_class_share_flags_a_one_class_predictor():
    assert predicted_class_share([1, 1, 1, 1]) == 1.0
    assert predicted_class_share([0, 1, 1, 0]) == 0.5
    assert predicted_class_share([2, 2, 2, 0]) == 0.75


def test_logistic_reference_finds_a_minority_class_that_a_majority_predictor_misses():
    rng = np.random.default_rng(0)

    def draw(n0: int, n1: int):
        y = np.array([0] * n0 + [1] * n1)
        x = rng.normal(size=(len(y), 5))
        x[:, 2] += 2.5 * y  # one informative feature
        return x, y

    x_train, y_train = draw(180, 20)  # 9:1 imbalance
    x_val, y_val = draw(90, 10)
    x_test, y_test = draw(180, 20)
    model = fit_logistic_reference(x_train, y_train, x_val, y_val)
    pred = model.predict_proba(x_test).argmax(axis=1)
    assert balanced_accuracy(y_test, pred) > 0.7
    assert balanced_accuracy(y_test, np.zeros_like(y_test)) == 0.5
    assert model.predict_proba(x_test).sum(axis=1) == pytest.approx(np.ones(len(y_test)))
