"""The objectives on the real models of eegphase.models (tiny sizes): shapes and interfaces fit together."""

from __future__ import annotations

import math

import torch
from torch import nn

from eegphase.models.heads import AuxiliaryHeads, CodePredictionHead
from eegphase.models.labram import LaBraM
from eegphase.models.signal_jepa import SignalJEPA, spatial_block_mask
from eegphase.models.tokenizer import NeuralTokenizer
from eegphase.objectives.jepa import MomentumSchedule, ema_update, jepa_objective, make_target_encoder
from eegphase.objectives.masked_modeling import (
    split_stacked_logits,
    symmetric_masked_modeling_loss,
    symmetric_masks,
)
from eegphase.objectives.multitask import MultiTaskLoss, TaskSpec

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


def test_jepa_objective_and_ema_on_signal_jepa():
    torch.manual_seed(0)
    encoder = SignalJEPA(depth=1, num_heads=2)
    target = make_target_encoder(encoder)
    predictor = nn.Linear(encoder.embed_dim, encoder.embed_dim)
    optimizer = torch.optim.SGD([*encoder.parameters(), *predictor.parameters()], lr=0.1)
    schedule = MomentumSchedule(0.9, 1.0, total_steps=2)
    x = torch.randn(2, N_CHANS, N_TIMES)
    ch_idx = torch.arange(N_CHANS).expand(2, -1)
    n_tokens = encoder(x, ch_idx, return_all_tokens=True).shape[1]
    mask = spatial_block_mask(ch_idx, n_tokens // N_CHANS, 0.5)
    result = jepa_objective(
        x,
        mask,
        context_encoder=lambda inp, m: encoder(inp, ch_idx, visible=~m, return_all_tokens=True),
        target_encoder=lambda inp: target(inp, ch_idx, return_all_tokens=True),
        predictor=lambda context, m: predictor(context),
    )
    assert math.isfinite(result.loss.item())
    result.loss.backward()
    optimizer.step()
    before = target.norm.weight.clone()
    ema_update(target, encoder, schedule(0))
    expected = 0.9 * before + 0.1 * encoder.norm.weight.detach()
    assert torch.allclose(target.norm.weight, expected)
    assert not torch.equal(target.norm.weight, before)


def test_multitask_loss_on_auxiliary_heads_with_missing_targets():
    heads = AuxiliaryHeads(8)
    z = torch.randn(4, 8)
    objective = MultiTaskLoss(
        TaskSpec("p_factor", "l1"), [TaskSpec("age", "mse", 0.1), TaskSpec("sex", "ce", 0.1)]
    )
    targets = {
        "p_factor": torch.tensor([0.2, float("nan"), -0.1, 0.4]),
        "age": torch.full((4,), float("nan")),
        "sex": torch.tensor([0.0, 1.0, float("nan"), 1.0]),
    }
    result = objective(heads(z), targets)
    result.total.backward()
    assert result.terms["age"].item() == 0.0
    assert all(torch.isfinite(p.grad).all() for p in heads.parameters() if p.grad is not None)
    assert heads.sex.net[-1].weight.grad.abs().sum() > 0
