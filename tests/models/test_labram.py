import pytest
import torch
import torch.nn.functional as F

from eegphase.models.heads import CodePredictionHead
from eegphase.models.labram import LaBraM
from eegphase.models.masking import random_patch_mask, symmetric_patch_masks
from eegphase.models.registry import LABRAM_SIZES, build_encoder

from .helpers import fixed_batch, train


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    ("size", "expected", "tolerance"), [("base", 5.8e6, 0.05), ("large", 46e6, 0.10), ("huge", 369e6, 0.10)]
)
def test_parameter_counts_match_the_paper(size, expected, tolerance):
    with torch.device("meta"):
        model = build_encoder("labram", size=size)
    assert abs(n_params(model) - expected) / expected < tolerance


def test_tiny_shapes_pooled_tokens_and_masked():
    model = build_encoder("labram_tiny").eval()
    x = fixed_batch(3)
    dim = LABRAM_SIZES["tiny"]["embed_dim"]
    assert model(x).shape == (3, dim)
    tokens = model(x, return_all_tokens=True)
    assert tokens.shape == (3, 129 * 2, dim)
    mask = random_patch_mask(3, 258, 0.5, generator=torch.Generator().manual_seed(1))
    assert mask.sum(1).tolist() == [129, 129, 129]
    masked_tokens = model(x, mask=mask, return_all_tokens=True)
    assert masked_tokens.shape == tokens.shape
    assert not torch.allclose(masked_tokens, tokens)
    # a masked patch's content reaches its own sample only through the patch embedding's statistics (per
    # sample over all of its patches, as LaBraM's TemporalConv, which runs before the mask token replaces it)
    x2 = x.clone().view(3, 129, 2, 100)
    x2[0, 0, 0] += 5.0  # token 0 of sample 0
    mask[0, 0] = True
    a = model(x, mask=mask, return_all_tokens=True)
    b = model(x2.view(3, 129, 200), mask=mask, return_all_tokens=True)
    torch.testing.assert_close(a[1:], b[1:])  # the other samples: untouched
    assert not torch.allclose(a[0], b[0])
    # with per-patch statistics (patch_norm="patch") the masked content is invisible
    per_patch = build_encoder("labram_tiny", patch_norm="patch").eval()
    a = per_patch(x, mask=mask, return_all_tokens=True)
    torch.testing.assert_close(a, per_patch(x2.view(3, 129, 200), mask=mask, return_all_tokens=True))


def test_cls_pooling_and_channel_subsets():
    model = LaBraM(n_chans=19, embed_dim=32, depth=1, num_heads=2, pooling="cls").eval()
    x = fixed_batch(2, n_chans=19, n_times=300)
    ch_idx = torch.arange(129, 148)  # 10-20 part of the electrode table
    assert model(x, ch_idx=ch_idx).shape == (2, 32)
    assert model(x, ch_idx=ch_idx, return_all_tokens=True).shape == (2, 19 * 3, 32)
    # the spatial embedding is used: another electrode set gives other embeddings
    assert not torch.allclose(model(x, ch_idx=ch_idx), model(x, ch_idx=torch.arange(19)))


def test_bad_inputs_raise_clear_errors():
    model = build_encoder("labram_tiny")
    with pytest.raises(ValueError, match="multiple of patch_size"):
        model(torch.randn(1, 129, 150))
    with pytest.raises(ValueError, match="ch_idx has 5 entries"):
        model(torch.randn(1, 129, 200), ch_idx=torch.arange(5))
    with pytest.raises(ValueError, match="max_time_patches"):
        model(torch.randn(1, 2, 1800))


def test_symmetric_masks_are_complements():
    mask, inverse = symmetric_patch_masks(4, 10, 0.5)
    assert torch.equal(mask, ~inverse)
    assert mask.sum().item() == 20


def test_masked_code_prediction_overfits_a_tiny_batch():
    torch.manual_seed(0)
    model = build_encoder("labram_tiny")
    head = CodePredictionHead(model.embed_dim, n_codes=16)
    x = fixed_batch(2, n_chans=8)
    codes = torch.randint(0, 16, (2, 16))
    mask, inverse = symmetric_patch_masks(2, 16, 0.5, generator=torch.Generator().manual_seed(0))
    x2, mask2, codes2 = torch.cat([x, x]), torch.cat([mask, inverse]), torch.cat([codes, codes])

    def loss():
        logits = head(model(x2, mask=mask2, return_all_tokens=True), mask2)
        assert logits.shape == (32, 16)  # 4 rows x 8 masked tokens
        return F.cross_entropy(logits, codes2[mask2])

    first, last = train([*model.parameters(), *head.parameters()], loss, steps=40, lr=1e-2)
    assert last < first / 10


def test_runs_under_bf16_autocast():
    model = build_encoder("labram_tiny")
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = model(fixed_batch(2))
    out.float().sum().backward()
    assert torch.isfinite(out).all()
    assert all(p.grad is not None for p in model.blocks.parameters())


@pytest.mark.parametrize("spectrum", [False, True])
def test_patch_spectrum_lets_amplitude_reach_the_tokens(spectrum):
    """The conv patch embedding normalises each window (per sample), so a window and the same window twice as
    large embed alike; with ``patch_spectrum`` its log amplitude spectrum is added, and they differ (absolute
    band power is then visible to the transformer from the first step)."""
    torch.manual_seed(0)
    model = build_encoder("labram", size="tiny", patch_spectrum=spectrum).eval()
    x = fixed_batch(2)
    with torch.no_grad():
        tokens, louder = model.patch_embed(model.patchify(x)), model.patch_embed(model.patchify(2 * x))
    gap = (tokens - louder).norm() / tokens.norm()
    assert (gap > 0.05) if spectrum else (gap < 1e-3), float(gap)


def test_electrode_pooling_starts_as_the_mean_and_follows_electrodes_not_positions():
    torch.manual_seed(0)
    kw = dict(n_chans=6, n_times=200, embed_dim=32, depth=2, num_heads=4)
    mean_model, electrode_model = LaBraM(**kw), LaBraM(**kw, pooling="electrode")
    electrode_model.load_state_dict(mean_model.state_dict(), strict=False)  # all but pool_weights
    x = torch.randn(3, 6, 200)
    torch.testing.assert_close(electrode_model(x), mean_model(x), rtol=1e-5, atol=1e-6)
    with torch.no_grad():  # electrode 2 counts three times as much as the others
        electrode_model.pool_weights[2] *= 3.0
    order = torch.tensor([4, 2, 0, 5, 1, 3])
    plain = electrode_model(x)
    permuted = electrode_model(x[:, order], ch_idx=order)
    torch.testing.assert_close(permuted, plain, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(plain, mean_model(x), atol=1e-4)
    plain.sum().backward()
    assert electrode_model.pool_weights.grad is not None
    assert electrode_model.pool_weights.grad[2].abs().sum() > 0
    assert electrode_model.pool_weights.grad[6:].abs().sum() == 0  # electrodes not in the input


@pytest.mark.parametrize("pooling", ["mean", "electrode"])
def test_views_equal_the_stacked_copies(pooling):
    """``views=2`` (one patch embedding, repeated) gives the tokens, the pooled embedding and the gradients of
    the input stacked twice, each copy with its own mask rows and per-sample electrodes. In float64 only the
    order of the gradient sums differs, but the patch embedding's GroupNorm computes in float32 by design:
    its gradients agree to float32 rounding (relative to each gradient's largest entry), the rest to 1e-9."""
    torch.manual_seed(0)
    encoder = build_encoder("labram_tiny", n_chans=19, pooling=pooling).double()
    x = torch.randn(3, 19, 200, dtype=torch.double)
    mask = torch.rand(6, 19 * 2) < 0.5
    ch_idx = torch.stack([torch.randperm(100)[:19] for _ in range(3)])
    names, params = zip(*encoder.named_parameters(), strict=True)
    for tokens in (True, False):
        stacked = encoder(x.repeat(2, 1, 1), ch_idx.repeat(2, 1), mask=mask, return_all_tokens=tokens)
        shared = encoder(x, ch_idx, mask=mask, return_all_tokens=tokens, views=2)
        torch.testing.assert_close(shared, stacked, rtol=1e-12, atol=1e-12)
    grads_stacked = torch.autograd.grad(stacked.square().sum(), params, allow_unused=True)
    grads_shared = torch.autograd.grad(shared.square().sum(), params, allow_unused=True)
    for name, a, b in zip(names, grads_stacked, grads_shared, strict=True):
        if a is not None:
            tolerance = 1e-5 if name.startswith("patch_embed.") else 1e-9
            assert (b - a).abs().max() <= tolerance * a.abs().max(), name
    with pytest.raises(ValueError, match="mask shape"):
        encoder(x, mask=mask[:3], views=2)


@pytest.mark.parametrize("patch_norm", ["sample", "patch"])
def test_relative_channel_amplitude_reaches_the_tokens_with_per_sample_statistics(patch_norm):
    """LaBraM's TemporalConv normalises per sample over all patches: one channel twice as large as before
    embeds differently (relative amplitude across channels survives); per-patch statistics normalise it away."""
    torch.manual_seed(0)
    model = build_encoder("labram", size="tiny", patch_norm=patch_norm).eval()
    x = fixed_batch(2, n_chans=6)
    louder = x.clone()
    louder[:, 0] *= 2.0
    with torch.no_grad():
        tokens, loud = model.patch_embed(model.patchify(x)), model.patch_embed(model.patchify(louder))
    gap = (tokens[:, 0] - loud[:, 0]).norm() / tokens[:, 0].norm()
    assert (gap > 0.05) if patch_norm == "sample" else (gap < 1e-3), float(gap)


def test_padded_channels_stay_out_of_the_patch_statistics():
    """Zero-padded channels (zero throughout the window) do not count in the per-sample statistics: the real
    channels embed as they do without the padding; ``channel_mask`` leaves out what it marks as not real."""
    torch.manual_seed(0)
    embed = build_encoder("labram", size="tiny", n_chans=8).eval().patch_embed
    x = fixed_batch(2, n_chans=3).view(2, 3, 2, 100)
    padded = torch.zeros(2, 8, 2, 100)
    padded[:, [1, 4, 6]] = x
    with torch.no_grad():
        alone = embed(x)
        torch.testing.assert_close(embed(padded)[:, [1, 4, 6]], alone, rtol=1e-5, atol=1e-5)
        noisy = padded.clone()
        noisy[:, 7] = 3.0 * torch.randn(2, 2, 100)  # a channel the mask calls padding: left out as well
        mask = torch.zeros(2, 8, dtype=torch.bool)
        mask[:, [1, 4, 6]] = True
        torch.testing.assert_close(embed(noisy, mask)[:, [1, 4, 6]], alone, rtol=1e-5, atol=1e-5)
        assert not torch.allclose(embed(noisy)[:, [1, 4, 6]], alone, atol=1e-3)  # counted without the mask


@pytest.mark.parametrize("qk_norm", [True, False])
def test_qv_bias_is_three_biases_with_the_key_one_zero(qk_norm):
    """``qkv_bias="qv"`` (LaBraM's q_bias and v_bias) computes what a full qkv bias with a zero key part does,
    and the key bias stays out of the parameters (so training cannot move it)."""
    from eegphase.models.transformer import Attention

    torch.manual_seed(0)
    qv, full = (
        Attention(16, 2, qkv_bias="qv", qk_norm=qk_norm),
        Attention(16, 2, qkv_bias=True, qk_norm=qk_norm),
    )
    with torch.no_grad():
        qv.q_bias.normal_(), qv.v_bias.normal_()
        full.load_state_dict({k: v for k, v in qv.state_dict().items() if "_bias" not in k}, strict=False)
        full.qkv.bias.copy_(torch.cat([qv.q_bias, torch.zeros(16), qv.v_bias]))
    x = torch.randn(2, 5, 16)
    torch.testing.assert_close(qv(x), full(x))
    assert not any("k_bias" in name or name == "qkv.bias" for name, _ in qv.named_parameters())
    with torch.no_grad():
        full.qkv.bias[16:32] = torch.randn(16)
    # a key bias shifts every score of a query alike (softmax ignores it) unless qk-norm reshapes the keys
    assert torch.allclose(qv(x), full(x), atol=1e-5) != qk_norm


def test_final_norm_pooled_normalises_the_mean_not_the_tokens():
    """``final_norm="pooled"``: LayerNorm(mean of raw tokens) (LaBraM's fc_norm); ``"tokens"``: mean of
    LayerNorm(token); the tokens themselves are normalised one by one either way."""
    torch.manual_seed(0)
    tokens_model = build_encoder("labram_tiny", pooling="mean").eval()
    pooled_model = build_encoder("labram_tiny", pooling="mean", final_norm="pooled").eval()
    pooled_model.load_state_dict(tokens_model.state_dict())
    x = fixed_batch(2, n_chans=4)
    with torch.no_grad():
        raw = tokens_model.encode(x, normalise=False)[:, 1:]
        torch.testing.assert_close(pooled_model(x), tokens_model.norm(raw.mean(1)))
        torch.testing.assert_close(tokens_model(x), tokens_model.norm(raw).mean(1))
        torch.testing.assert_close(
            pooled_model(x, return_all_tokens=True), tokens_model(x, return_all_tokens=True)
        )
    assert not torch.allclose(pooled_model(x), tokens_model(x), atol=1e-3)
