"""SignalJEPA objective pieces: loss at masked tokens, EMA update, momentum schedule, block masks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from eegphase.objectives.jepa import (
    BlockMaskSampler,
    MomentumSchedule,
    ema_update,
    jepa_loss,
    jepa_objective,
    make_target_encoder,
)


def test_loss_uses_only_masked_tokens_of_normalised_targets():
    target = torch.tensor([[[1.0, 3.0], [10.0, -10.0]]])  # layer-normed: [-1, 1] and [1, -1]
    predicted = torch.tensor([[[0.0, 0.0], [1.0, -1.0]]])
    mask = torch.tensor([[True, False]])
    # Only token 0 counts: errors (1, 1) -> MSE 1, smooth L1 (beta 1) 0.5 per element.
    assert jepa_loss(predicted, target, mask, "mse").item() == pytest.approx(1.0, abs=1e-4)
    assert jepa_loss(predicted, target, mask, "smooth_l1").item() == pytest.approx(0.5, abs=1e-4)
    with pytest.raises(ValueError, match="unknown JEPA loss"):
        jepa_loss(predicted, target, mask, "cosine")


def test_ema_update_moves_target_towards_online():
    online = nn.Linear(2, 2)
    target = make_target_encoder(online)
    assert all(not p.requires_grad for p in target.parameters())
    with torch.no_grad():
        for p in target.parameters():
            p.zero_()
        for p in online.parameters():
            p.fill_(1.0)
    ema_update(target, online, momentum=0.9)
    for p in target.parameters():
        assert torch.allclose(p, torch.full_like(p, 0.1))
    with pytest.raises(ValueError, match="differ"):
        ema_update(nn.Linear(2, 2), nn.Sequential(nn.Linear(2, 2)), 0.9)


def test_momentum_schedule_rises_from_base_to_final():
    schedule = MomentumSchedule(base=0.996, final=1.0, total_steps=100)
    values = [schedule(step) for step in range(0, 121, 10)]
    assert values[0] == pytest.approx(0.996)
    assert values[10] == pytest.approx(1.0) and values[-1] == pytest.approx(1.0)
    assert all(b >= a for a, b in zip(values, values[1:], strict=False))
    assert MomentumSchedule(0.99, 1.0, 10, "linear")(5) == pytest.approx(0.995)


def test_temporal_block_masks_hide_whole_time_steps():
    sampler = BlockMaskSampler(n_channels=3, n_times=8, mask_ratio=0.5, mode="temporal", block_length=2)
    masks = sampler(16, generator=torch.Generator().manual_seed(0)).view(16, 3, 8)
    assert torch.equal(masks, masks[:, :1].expand_as(masks))  # same time steps on every channel
    hidden_steps = masks[:, 0].sum(dim=1)
    assert torch.all(hidden_steps >= 4) and torch.all(hidden_steps < 8)


def test_spatial_block_masks_hide_the_nearest_channels():
    positions = np.array([[float(i), 0.0, 0.0] for i in range(6)])  # electrodes on a line
    sampler = BlockMaskSampler(6, 4, mask_ratio=0.5, mode="spatial", channel_positions=positions)
    masks = sampler(20, generator=torch.Generator().manual_seed(0)).view(20, 6, 4)
    for mask in masks:
        channels = torch.nonzero(mask[:, 0]).flatten()
        assert len(channels) == 3 and torch.all(mask[channels].all(dim=1))
        assert channels.max() - channels.min() == 2  # contiguous neighbours around the centre
    with pytest.raises(ValueError, match="channel_positions"):
        BlockMaskSampler(6, 4, mode="spatial")


class _Encoder(nn.Module):
    """Tokens (B, N, 4) -> embeddings; masked tokens are zeroed when a mask is given."""

    def __init__(self):
        super().__init__()
        self.proj = nn.Linear(4, 8)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        if mask is not None:
            x = x.masked_fill(mask.unsqueeze(-1), 0.0)
        return self.proj(x)


def test_objective_trains_the_context_side_only():
    torch.manual_seed(0)
    context = _Encoder()
    target = make_target_encoder(context)
    predictor = nn.Linear(8, 8)
    x = torch.randn(4, 6, 4)
    mask = BlockMaskSampler(1, 6, 0.5)(4, torch.Generator().manual_seed(1))
    result = jepa_objective(x, mask, context, target, lambda z, m: predictor(z), kind="mse")
    result.loss.backward()
    with torch.no_grad():
        normed = F.layer_norm(target(x), (8,))
        expected = F.mse_loss(predictor(context(x, mask))[mask], normed[mask])
    assert result.loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert context.proj.weight.grad is not None and predictor.weight.grad is not None
    assert target.proj.weight.grad is None
    assert result.target_std.item() > 0
