"""Masked EEG modelling loss against a hand computation; symmetric masks are complements."""

from __future__ import annotations

import math

import pytest
import torch

from eegphase.objectives.masked_modeling import (
    masked_code_loss,
    split_stacked_logits,
    symmetric_masked_modeling_loss,
    symmetric_masks,
)


def test_symmetric_masks_are_complements_with_half_masked():
    mask, inverse = symmetric_masks(4, 10, 0.5, generator=torch.Generator().manual_seed(0))
    assert mask.dtype == torch.bool and mask.shape == (4, 10)
    assert torch.equal(inverse, ~mask)
    assert mask.sum(dim=1).tolist() == [5, 5, 5, 5]
    assert not torch.equal(mask[0], mask[1]) or not torch.equal(mask[1], mask[2])  # random per row


def test_symmetric_loss_matches_hand_computation():
    # One sample, two patches, three codes. Targets: patch 0 -> code 0, patch 1 -> code 2.
    codes = torch.tensor([[0, 2]])
    mask = torch.tensor([[True, False]])
    view = torch.tensor([[[2.0, 0.0, 0.0], [9.0, 9.0, 9.0]]])  # patch 1 unused: visible in this view
    inverse_view = torch.tensor([[[9.0, 9.0, 9.0], [0.0, 1.0, 0.0]]])  # only patch 1 is scored
    loss_view = -2.0 + math.log(math.exp(2.0) + 2.0)
    loss_inverse = -0.0 + math.log(2.0 + math.exp(1.0))
    result = symmetric_masked_modeling_loss(view, inverse_view, codes, mask)
    assert result.loss.item() == pytest.approx((loss_view + loss_inverse) / 2, rel=1e-6)  # mean of the views
    assert result.accuracy.item() == pytest.approx(0.5)  # patch 0 right (argmax 0), patch 1 wrong (argmax 1)
    assert result.n_masked == 2


def test_gathered_logits_of_a_stacked_batch_give_the_same_loss():
    gen = torch.Generator().manual_seed(1)
    codes = torch.randint(0, 7, (3, 6), generator=gen)
    mask, inverse = symmetric_masks(3, 6, 0.5, generator=gen)
    full = torch.randn(6, 6, 7, generator=gen)  # logits of the stacked batch cat([x, x])
    stacked_mask = torch.cat([mask, inverse])
    gathered = full[stacked_mask]  # what CodePredictionHead returns
    first, second = split_stacked_logits(gathered, mask)
    from_gathered = symmetric_masked_modeling_loss(first, second, codes, mask)
    from_full = symmetric_masked_modeling_loss(full[:3], full[3:], codes, mask)
    assert from_gathered.loss.item() == pytest.approx(from_full.loss.item(), rel=1e-6)
    assert from_gathered.accuracy.item() == pytest.approx(from_full.accuracy.item())


def test_accuracy_is_the_share_of_rows_whose_argmax_is_the_code():
    gen = torch.Generator().manual_seed(2)
    logits = torch.randn(500, 50, generator=gen).bfloat16()  # as autocast gives them
    codes = torch.randint(0, 50, (500,), generator=gen)
    codes[:200] = logits[:200].float().argmax(-1)  # 200 hits and about 6 chance hits among the rest
    expected = (logits.float().argmax(-1) == codes).float().mean().item()
    assert expected > 0.4
    assert masked_code_loss(logits, codes)[1].item() == pytest.approx(expected)


def test_bad_inputs_are_named():
    with pytest.raises(ValueError, match="nothing to predict"):
        masked_code_loss(
            torch.randn(1, 2, 3), torch.zeros(1, 2, dtype=torch.long), torch.zeros(1, 2, dtype=torch.bool)
        )
    with pytest.raises(TypeError, match="boolean"):
        masked_code_loss(torch.randn(1, 2, 3), torch.zeros(1, 2, dtype=torch.long), torch.ones(1, 2))


def test_trivial_predictor_is_the_code_frequencies():
    from eegphase.objectives.masked_modeling import code_entropy, trivial_code_predictor, trivial_code_scores

    codes = torch.tensor([[0, 0, 0, 1], [0, 0, 2, 1]])  # code 0: 5 of 8
    counts = torch.bincount(codes.flatten(), minlength=4)
    log_prior = trivial_code_predictor(counts, smoothing=0.0)
    loss, accuracy = trivial_code_scores(log_prior, codes)
    expected = -(5 * math.log(5 / 8) + 2 * math.log(2 / 8) + math.log(1 / 8)) / 8  # the code entropy
    assert loss.item() == pytest.approx(expected, rel=1e-6)
    assert code_entropy(counts) == pytest.approx(expected, rel=1e-12)
    assert accuracy.item() == pytest.approx(5 / 8)


def test_trivial_predictor_scored_where_its_counts_came_from_is_the_entropy():
    """The bug this pins: the recipe handed counts to a function that bincounted them again, so the 'trivial'
    loss exceeded ln(n_codes), the loss of a uniform guess, and masked modelling looked 36% better than it was."""
    from eegphase.objectives.masked_modeling import code_entropy, trivial_code_predictor, trivial_code_scores

    n_codes = 512
    generator = torch.Generator().manual_seed(0)
    probabilities = torch.distributions.Dirichlet(torch.full((n_codes,), 0.3)).sample()
    codes = torch.multinomial(probabilities, 20_000, replacement=True, generator=generator).view(100, 200)
    counts = torch.bincount(codes.flatten(), minlength=n_codes)
    loss, _ = trivial_code_scores(trivial_code_predictor(counts), codes)  # the recipe's default smoothing
    entropy = code_entropy(counts)
    assert entropy < math.log(n_codes) - 0.3  # skewed codes: a real floor below the uniform guess
    assert entropy <= loss.item() <= entropy + 0.01  # add-0.5 smoothing costs little at 20 000 codes
    with pytest.raises(ValueError, match="code counts"):
        trivial_code_predictor(codes)  # codes are not counts
