"""The head-only stage trains what the head reads through: the head and the encoder's learned pooling."""

from __future__ import annotations

import torch

from eegphase.models.predictor import build_predictor
from eegphase.phases.finetune import freeze_encoder_body

CFG = {"name": "labram_tiny", "encoder": {"_target_": "eegphase.models.labram.LaBraM", "embed_dim": 16,
       "depth": 2, "num_heads": 2, "pooling": "electrode", "n_chans": 4}}  # fmt: skip


def test_a_head_only_step_moves_the_pooling_and_the_head_but_no_block():
    torch.manual_seed(0)
    model = build_predictor(CFG)
    freeze_encoder_body(model)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    optimizer = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = model(torch.randn(3, 4, 200)).square().mean()
    loss.backward()
    optimizer.step()
    moved = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert "encoder.pool_weights" in moved
    assert any(name.startswith("head.") for name in moved)
    assert not any(name.startswith("encoder.") and name != "encoder.pool_weights" for name in moved)
