"""The JEPA objective (SignalJEPAPretrainer, the pipeline's one JEPA loss): scored tokens and the EMA target."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from eegphase.models.registry import build_encoder
from eegphase.models.signal_jepa import SignalJEPAPretrainer, spatial_block_mask

N_CHANS, N_TIMES = 8, 200


def _pretrainer(seed: int = 0) -> SignalJEPAPretrainer:
    torch.manual_seed(seed)
    return SignalJEPAPretrainer(build_encoder("signal_jepa_tiny"), predictor_depth=1, predictor_heads=2)


def _by_hand(pretrainer, x, generator_seed, scored_channels=None) -> torch.Tensor:
    """Smooth L1 of the predictor against the layer-normed target tokens at the masked tokens, by hand."""
    enc = pretrainer.encoder
    ch_idx = torch.arange(N_CHANS).expand(x.shape[0], -1)
    with torch.no_grad():
        target = F.layer_norm(pretrainer.target_encoder(x, ch_idx, return_all_tokens=True), (enc.embed_dim,))
        local, pos = enc.local_tokens(x, ch_idx)
        per_channel = local.shape[1] // N_CHANS
        masked = spatial_block_mask(ch_idx, per_channel, 0.5, torch.Generator().manual_seed(generator_seed))
        h = enc.contextualise(local + pos, visible=~masked)
        h = torch.where(masked.unsqueeze(-1), pretrainer.mask_token + pos, h)
        for block in pretrainer.predictor:
            h = block(h)
        prediction = pretrainer.predictor_out(pretrainer.predictor_norm(h))
    if scored_channels is not None:
        masked = masked & scored_channels.repeat_interleave(per_channel, dim=1)
    return F.smooth_l1_loss(prediction[masked], target[masked])


def test_loss_scores_the_masked_tokens_against_normalised_ema_targets():
    pretrainer = _pretrainer()
    x = torch.randn(3, N_CHANS, N_TIMES)
    loss = pretrainer.loss(x, generator=torch.Generator().manual_seed(1))
    assert loss.item() == pytest.approx(_by_hand(pretrainer, x, 1).item(), rel=1e-5)


def test_padded_channels_are_no_targets():
    pretrainer = _pretrainer()
    x = torch.randn(2, N_CHANS, N_TIMES)
    real = torch.ones(2, N_CHANS, dtype=torch.bool)
    real[:, 5:] = False
    x[:, 5:] = 0.0
    loss = pretrainer.loss(x, generator=torch.Generator().manual_seed(3), channel_mask=real)
    assert loss.item() == pytest.approx(_by_hand(pretrainer, x, 3, real).item(), rel=1e-5)
    nothing_real = torch.zeros_like(real)
    empty = pretrainer.loss(x, generator=torch.Generator().manual_seed(3), channel_mask=nothing_real)
    assert empty.item() == 0.0  # a mask that hides no real channel adds nothing (and no NaN)


def test_gradients_reach_the_context_side_and_the_target_follows_by_ema():
    pretrainer = _pretrainer()
    x = torch.randn(2, N_CHANS, N_TIMES)
    pretrainer.loss(x).backward()
    assert pretrainer.encoder.norm.weight.grad is not None
    assert pretrainer.predictor_out.weight.grad is not None
    assert all(p.grad is None for p in pretrainer.target_encoder.parameters())
    with torch.no_grad():
        pretrainer.encoder.norm.weight.add_(1.0)
    before = pretrainer.target_encoder.norm.weight.clone()
    pretrainer.update_target(momentum=0.9)
    expected = 0.9 * before + 0.1 * pretrainer.encoder.norm.weight
    assert torch.allclose(pretrainer.target_encoder.norm.weight, expected)
