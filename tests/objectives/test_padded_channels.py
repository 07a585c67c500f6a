"""Zero-padded channels (a TUH window on the HydroCel layout) are no MEM targets, are not pooled and do not
train the tokenizer."""

from __future__ import annotations

import pytest
import torch

from eegphase.models.masking import channel_token_mask, pool_tokens
from eegphase.models.registry import build_encoder
from eegphase.phases.pretrain_mem import MaskedPretrainModel, code_counts

N_CHANS, N_TIMES, N_CODES = 6, 200, 16  # 2 patches per channel
REAL = 4  # channels 4 and 5 are padding


def _batch(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(3, N_CHANS, N_TIMES, generator=torch.Generator().manual_seed(seed))
    x[:, REAL:] = 0.0
    mask = torch.zeros(3, N_CHANS, dtype=torch.bool)
    mask[:, :REAL] = True
    return x, mask


def _model() -> MaskedPretrainModel:
    torch.manual_seed(0)
    return MaskedPretrainModel(build_encoder("labram_tiny", n_chans=N_CHANS), N_CODES, with_aux=True).eval()


def test_codes_on_padded_channels_do_not_enter_the_loss():
    model, (x, channel_mask) = _model(), _batch()
    codes = torch.randint(0, N_CODES, (3, N_CHANS * 2), generator=torch.Generator().manual_seed(1))
    padded = ~channel_token_mask(channel_mask, codes.shape[1])
    assert padded.sum() == 3 * 2 * 2  # channel-major: the last two channels' patches
    other = codes.clone()
    other[padded] = (codes[padded] + 5) % N_CODES
    with torch.no_grad():
        a, _ = model(x, codes, 0.5, channel_mask)
        b, _ = model(x, other, 0.5, channel_mask)
        unmasked, _ = model(x, other, 0.5)
    assert a.loss.item() == b.loss.item() and a.accuracy.item() == b.accuracy.item()
    assert a.n_masked == 3 * REAL * 2  # every real patch is a target once over the two views
    assert unmasked.n_masked == 3 * N_CHANS * 2 and unmasked.loss.item() != a.loss.item()


def test_pooled_embedding_ignores_padded_tokens():
    tokens = torch.randn(2, 6, 3)
    valid = torch.tensor([[True] * 6, [True, True, False, False, True, False]])
    pooled = pool_tokens(tokens, valid)
    assert torch.allclose(pooled[0], tokens[0].mean(0))
    assert torch.allclose(pooled[1], tokens[1, [0, 1, 4]].mean(0))
    # in the model: the auxiliary heads read the same embedding whatever the padded tokens hold
    model, (x, channel_mask) = _model(), _batch()
    captured = []
    model.aux_heads.register_forward_pre_hook(lambda _m, args: captured.append(args[0]))
    codes = torch.zeros(3, N_CHANS * 2, dtype=torch.long)
    with torch.no_grad():
        model(x, codes, 0.5, channel_mask)
        tokens = model.encoder(x, mask=torch.zeros_like(codes, dtype=torch.bool), return_all_tokens=True)
    expected = pool_tokens(tokens, channel_token_mask(channel_mask, codes.shape[1]))
    assert torch.allclose(captured[0], expected, atol=1e-5)
    assert not torch.allclose(captured[0], tokens.mean(1), atol=1e-3)


def test_tokenizer_loss_and_code_counts_skip_padded_channels():
    torch.manual_seed(0)
    tokenizer = build_encoder("tokenizer", size="tiny", n_chans=N_CHANS, n_codes=N_CODES).eval()
    x, channel_mask = _batch()
    padded = ~channel_token_mask(channel_mask, N_CHANS * 2)

    def junk_on_padding(_module, _args, out):
        return out + 100.0 * padded.unsqueeze(-1)

    with torch.no_grad():
        clean = tokenizer(x, channel_mask=channel_mask).loss
        clean_all = tokenizer(x).loss
        hooks = [
            head.register_forward_hook(junk_on_padding)
            for head in (tokenizer.amplitude_head, tokenizer.phase_head)
        ]
        assert tokenizer(x, channel_mask=channel_mask).loss.item() == pytest.approx(clean.item(), rel=1e-6)
        assert tokenizer(x).loss.item() > clean_all.item() + 100  # without the mask the padding counts
        for hook in hooks:
            hook.remove()
    counts = code_counts(tokenizer, [{"x": x, "channel_mask": channel_mask}], torch.device("cpu"))
    assert int(counts.sum()) == 3 * REAL * 2  # only the real channels' patches are counted


def test_tokenizer_trains_with_a_channel_mask():
    torch.manual_seed(0)
    tokenizer = build_encoder("tokenizer", size="tiny", n_chans=N_CHANS, n_codes=N_CODES)
    x, channel_mask = _batch()
    out = tokenizer(x, channel_mask=channel_mask)
    out.loss.backward()
    assert torch.isfinite(out.loss) and out.codes.shape == (3, N_CHANS * 2)
