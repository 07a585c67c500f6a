import torch

from eegphase.models.registry import build_encoder
from eegphase.models.tokenizer import EMACodebook, spectral_targets

from .helpers import fixed_batch, train


def test_codes_shape_and_range():
    tokenizer = build_encoder("tokenizer", size="tiny").eval()
    codes = tokenizer.encode(fixed_batch(3, n_chans=10))
    assert codes.shape == (3, 20) and codes.dtype == torch.long
    assert int(codes.min()) >= 0 and int(codes.max()) < tokenizer.codebook.n_codes


def test_spectral_targets_are_standardised_per_frequency_and_keep_each_patchs_power():
    generator = torch.Generator().manual_seed(0)
    patches = torch.randn(64, 100, generator=generator)
    patches[0] *= 10.0  # one loud patch: its power must show in its target, not be normalised away
    amplitude, phase = spectral_targets(patches)
    assert amplitude.shape == phase.shape == (64, 50)
    torch.testing.assert_close(amplitude.mean(0), torch.zeros(50), atol=1e-4, rtol=0)
    torch.testing.assert_close(amplitude.std(0), torch.ones(50), atol=1e-3, rtol=0)
    torch.testing.assert_close(phase.std(-1), torch.ones(64), atol=1e-3, rtol=0)
    assert amplitude[0].mean() > amplitude[1:].mean(-1).max() + 1.0


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


def test_a_popular_code_moves_no_faster_than_a_rare_one():
    """Count-weighted EMA lets a popular code jump to the centre of the data and absorb every vector."""
    torch.manual_seed(0)
    codebook = EMACodebook(n_codes=2, code_dim=2, decay=0.9, restart_after=None).train()
    codebook.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
    codebook.initialised.fill_(True)
    towards = torch.nn.functional.normalize(torch.tensor([[1.0, 0.3], [0.3, 1.0]]), dim=-1)
    z = torch.cat([towards[:1].repeat(100, 1), towards[1:]])  # 100 vectors for code 0, 1 for code 1
    codebook.update(z, torch.tensor([0] * 100 + [1]))
    moved = torch.acos((codebook.weight * torch.eye(2)).sum(-1).clamp(max=1.0))
    torch.testing.assert_close(moved[0], moved[1], atol=1e-5, rtol=0)
    assert 0 < float(moved[0]) < 0.1


def test_kmeans_initialisation_and_restarts_keep_every_code_in_use():
    torch.manual_seed(0)
    centres = torch.nn.functional.normalize(torch.randn(16, 8), dim=-1)

    def batch():
        picks = torch.randint(0, 16, (512,))
        return torch.nn.functional.normalize(centres[picks] + 0.05 * torch.randn(512, 8), dim=-1)

    codebook = EMACodebook(n_codes=16, code_dim=8, restart_after=3).train()
    _, codes, _ = codebook(batch())
    assert len(torch.unique(codes)) == 16  # k-means on the first batch: every code starts inside a cluster
    codebook.weight[0] = -codebook.weight[0]  # a code far from all data: never chosen
    for _ in range(4):
        codebook(batch())
    assert int(codebook.restarts) >= 1
    _, codes, _ = codebook(batch())
    assert len(torch.unique(codes)) >= 15


def test_tokenizer_codes_carry_the_spectrum_and_stay_in_use():
    """The collapse this guards against: the decoder predicts from position alone and every patch gets
    one code. Here the input holds two kinds of patch (alpha-rich and broadband); after training, the
    codes must separate them and many codes must stay in use."""
    torch.manual_seed(0)
    t = torch.arange(200) / 100.0

    def batch(n=16):
        alpha = torch.rand(n, 1, 1) < 0.5
        noise = torch.randn(n, 8, 200)
        rhythm = 4.0 * torch.sin(2 * torch.pi * 10.0 * t + torch.rand(n, 8, 1) * 6.28)
        return noise + alpha * rhythm, alpha.flatten()

    tokenizer = build_encoder("tokenizer", size="tiny", n_codes=64)
    optimiser = torch.optim.AdamW(tokenizer.parameters(), lr=1e-3)
    for _ in range(60):
        x, _ = batch()
        loss = tokenizer(x).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    tokenizer.eval()
    x, alpha = batch(64)
    codes = tokenizer.encode(x)
    assert len(torch.unique(codes)) >= 32
    kind = alpha[:, None].expand_as(codes).flatten().float()
    flat = codes.flatten()
    alpha_share = torch.zeros(64).index_add_(0, flat, kind) / torch.bincount(flat, minlength=64).clamp(min=1)
    majority = (alpha_share[flat] > 0.5).float()
    purity = float((majority == kind).float().mean())  # 0.5 when the codes say nothing about the kind
    assert purity > 0.65, f"code purity {purity:.2f}"  # measured 0.75 (a collapsed codebook: 0.52)


def test_codes_are_the_same_inside_a_bf16_autocast_region():
    torch.manual_seed(0)
    tokenizer = build_encoder("tokenizer", size="tiny", n_codes=64).eval()
    x = fixed_batch(4, n_chans=8)
    plain = tokenizer.encode(x)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        inside = tokenizer.encode(x)
    assert torch.equal(plain, inside)


def test_phase_weight_zero_leaves_the_phase_out_of_the_loss():
    x = fixed_batch(2, n_chans=4)
    losses = {}
    for weight in (1.0, 0.0):
        torch.manual_seed(0)
        out = build_encoder("tokenizer", size="tiny", n_codes=16, phase_weight=weight).eval()(x)
        losses[weight] = out
    full, amplitude_only = losses[1.0], losses[0.0]
    assert float(full.phase_loss) > 0.1  # a phase term that would show
    torch.testing.assert_close(full.loss, full.amplitude_loss + full.phase_loss + full.commitment_loss)
    torch.testing.assert_close(
        amplitude_only.loss, amplitude_only.amplitude_loss + amplitude_only.commitment_loss
    )
