import torch

from eegphase.models.registry import build_encoder
from eegphase.models.tokenizer import EMACodebook, spectral_targets

from .helpers import fixed_batch, train


def test_codes_shape_and_range():
    tokenizer = build_encoder("tokenizer", size="tiny").eval()
    codes = tokenizer.encode(fixed_batch(3, n_chans=10))
    assert codes.shape == (3, 20) and codes.dtype == torch.long
    assert int(codes.min()) >= 0 and int(codes.max()) < tokenizer.codebook.n_codes


def test_spectral_targets_are_standardised():
    amplitude, phase = spectral_targets(torch.randn(5, 100))
    assert amplitude.shape == phase.shape == (5, 50)
    torch.testing.assert_close(amplitude.mean(-1), torch.zeros(5), atol=1e-5, rtol=0)
    torch.testing.assert_close(phase.std(-1), torch.ones(5), atol=1e-3, rtol=0)


def test_training_loss_decreases_on_a_tiny_batch():
    torch.manual_seed(0)
    tokenizer = build_encoder("tokenizer", size="tiny")
    x = fixed_batch(2, n_chans=4)
    first, last = train(tokenizer.parameters(), lambda: tokenizer(x).loss, steps=40, lr=1e-2)
    out = tokenizer(x)
    assert out.codes.shape == (2, 8)
    assert last < 0.7 * first


def test_ema_codebook_moves_used_codes_towards_their_inputs():
    torch.manual_seed(0)
    codebook = EMACodebook(n_codes=8, code_dim=4, decay=0.5).train()
    z = torch.nn.functional.normalize(torch.randn(32, 4), dim=-1)
    codebook(z)  # first call initialises from the data
    before = codebook.weight.clone()
    target = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0, 0.0, 0.0]]), dim=-1).repeat(16, 1)
    _, codes, _ = codebook(target)
    used = codes[0]
    assert not torch.equal(before, codebook.weight)
    assert (codebook.weight[used] @ target[0]) > (before[used] @ target[0])
    unused = torch.ones(8, dtype=torch.bool)
    unused[used] = False
    torch.testing.assert_close(codebook.weight[unused], before[unused])
    assert codebook.cluster_size[used] > 0
    codebook.eval()
    frozen = codebook.weight.clone()
    codebook(target)
    assert torch.equal(frozen, codebook.weight)
