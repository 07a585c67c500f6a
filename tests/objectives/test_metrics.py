"""Challenge metrics: NRMSE with the population std, the weighted score, balanced accuracy."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from eegphase.objectives.metrics import balanced_accuracy, challenge_score, nrmse


def test_predicting_the_mean_scores_one():
    y = np.array([0.3, 1.7, 2.2, 5.0, -1.0])
    assert nrmse(y, np.full_like(y, y.mean())) == pytest.approx(1.0)


def test_nrmse_matches_a_hand_computation_with_population_std():
    y_true = [1.0, 2.0, 3.0, 4.0]
    y_pred = [1.0, 2.0, 3.0, 5.0]
    rmse = math.sqrt(1.0 / 4)
    population_std = math.sqrt(((1.5**2) * 2 + (0.5**2) * 2) / 4)  # ddof=0: sqrt(1.25)
    assert nrmse(y_true, y_pred) == pytest.approx(rmse / population_std)
    assert nrmse(torch.tensor(y_true).unsqueeze(1), torch.tensor(y_pred)) == pytest.approx(
        rmse / population_std
    )


def test_score_weights_challenges_03_07():
    assert challenge_score(0.914, 0.985) == pytest.approx(0.3 * 0.914 + 0.7 * 0.985)
    assert challenge_score(1.0, 0.0) == pytest.approx(0.3)


def test_bad_inputs_raise_clear_errors():
    with pytest.raises(ValueError, match="zero variance"):
        nrmse([2.0, 2.0, 2.0], [1.0, 2.0, 3.0])
    with pytest.raises(ValueError, match="empty"):
        nrmse([], [])
    with pytest.raises(ValueError, match="3 values but y_pred has 2"):
        nrmse([1.0, 2.0, 3.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="NaN"):
        nrmse([1.0, float("nan")], [1.0, 2.0])


def test_balanced_accuracy_averages_per_class_recall():
    # Class 0: 3/3 right, class 1: 0/1 right -> 0.5 although plain accuracy is 0.75.
    assert balanced_accuracy([0, 0, 0, 1], [0, 0, 0, 0]) == pytest.approx(0.5)
    assert balanced_accuracy([0, 1, 1, 2], [0, 1, 0, 2]) == pytest.approx((1 + 0.5 + 1) / 3)
