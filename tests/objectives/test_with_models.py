"""The objectives on the real models of eegphase.models (tiny sizes): shapes and interfaces fit together."""

from __future__ import annotations

import math

import torch

from eegphase.models.heads import AuxiliaryHeads, CodePredictionHead
from eegphase.models.labram import LaBraM
from eegphase.models.tokenizer import NeuralTokenizer
from eegphase.objectives.masked_modeling import (
    split_stacked_logits,
    symmetric_masked_modeling_loss,
    symmetric_masks,
)
from eegphase.objectives.multitask import AuxiliaryObjective

N_CHANS, N_TIMES, N_CODES = 4, 200, 32


def test_symmetric_masked_modeling_on_labram_with_tokenizer_codes():
    torch.manual_seed(0)
    tokenizer = NeuralTokenizer(
        N_CHANS, N_TIMES, embed_dim=16, depth=1, num_heads=2, decoder_depth=1, n_codes=N_CODES
    )
    student = LaBraM(N_CHANS, N_TIMES, embed_dim=16, depth=1, num_heads=2)
    head = CodePredictionHead(16, N_CODES)
    x = torch.randn(3, N_CHANS, N_TIMES)
    codes = tokenizer.encode(x)  # (B, C*P)
    mask, inverse = symmetric_masks(3, codes.shape[1], 0.5)
    stacked_mask = torch.cat([mask, inverse])
    tokens = student(torch.cat([x, x]), mask=stacked_mask, return_all_tokens=True)
    view, inverse_view = split_stacked_logits(head(tokens, stacked_mask), mask)
    result = symmetric_masked_modeling_loss(view, inverse_view, codes, mask)
    assert math.isfinite(result.loss.item()) and result.n_masked == codes.numel()
    # With near-uniform logits each view's cross-entropy starts near log(n_codes).
    assert all(abs(v.item() - math.log(N_CODES)) < 1.0 for v in result.view_losses)
    result.loss.backward()
    assert student.patch_embed.proj.weight.grad.abs().sum() > 0


def test_auxiliary_objective_on_auxiliary_heads_with_missing_targets():
    heads = AuxiliaryHeads(8)
    z = torch.randn(4, 8)
    objective = AuxiliaryObjective(
        {"p_factor": {"weight": 1.0, "loss": "l1"}, "age": {"weight": 0.1, "loss": "mse"},
         "sex": {"weight": 0.1, "loss": "ce"}},
        ["p_factor", "age", "sex"],
    )  # fmt: skip
    nan = float("nan")
    y = torch.tensor([[0.2, nan, 0.0], [nan, nan, 1.0], [-0.1, nan, nan], [0.4, nan, 1.0]])
    losses = objective.losses(heads(z), y)
    sum(losses.values()).backward()
    assert losses["aux_age"].item() == 0.0
    assert all(torch.isfinite(p.grad).all() for p in heads.parameters() if p.grad is not None)
    assert heads.sex.net[-1].weight.grad.abs().sum() > 0
