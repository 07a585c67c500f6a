import torch
import torch.nn.functional as F

from eegphase.models.registry import build_encoder
from eegphase.models.signal_jepa import SignalJEPAPreLocal, SignalJEPAPretrainer, spatial_block_mask

from .helpers import fixed_batch, train


def test_base_shapes_and_one_hertz_tokens():
    model = build_encoder("signal_jepa").eval()
    assert model.embed_dim == 64 and len(model.blocks) == 8
    x = fixed_batch(2, n_chans=6)
    assert model(x, return_all_tokens=True).shape == (2, 6 * 2, 64)  # 2 s -> 2 tokens per channel
    assert model(x).shape == (2, 64)


def test_spatial_block_mask_hides_whole_channels_nearest_a_centre():
    ch_idx = torch.arange(129).expand(3, -1)
    mask = spatial_block_mask(ch_idx, 2, ratio=0.25, generator=torch.Generator().manual_seed(0))
    per_channel = mask.view(3, 129, 2)
    assert torch.equal(per_channel[..., 0], per_channel[..., 1])
    assert per_channel[..., 0].sum(1).tolist() == [32, 32, 32]


def test_jepa_loss_decreases_and_target_follows_by_ema():
    torch.manual_seed(0)
    pretrainer = SignalJEPAPretrainer(build_encoder("signal_jepa_tiny"), predictor_depth=1, predictor_heads=2)
    x = fixed_batch(2, n_chans=12)
    target_before = [p.clone() for p in pretrainer.target_encoder.parameters()]
    generator = torch.Generator().manual_seed(0)

    def loss():
        generator.manual_seed(0)  # a fixed mask: the tiny batch must be learnable
        return pretrainer.loss(x, generator=generator)

    first, last = train([p for p in pretrainer.parameters() if p.requires_grad], loss, steps=40, lr=3e-3)
    assert last < first / 2
    pretrainer.update_target(momentum=0.5)
    moved = [
        not torch.equal(a, b)
        for a, b in zip(target_before, pretrainer.target_encoder.parameters(), strict=True)
    ]
    assert any(moved)
    assert all(not p.requires_grad for p in pretrainer.target_encoder.parameters())


def test_prelocal_shapes_and_overfit():
    torch.manual_seed(0)
    model = SignalJEPAPreLocal(n_chans=129, n_times=200, n_outputs=1, n_spat_filters=4)
    x, y = fixed_batch(4), torch.randn(4, 1)
    assert model.forward_features(x).shape == (4, 4 * 2 * 64)
    first, last = train(model.parameters(), lambda: F.mse_loss(model(x), y), steps=40, lr=3e-3)
    assert last < first / 10
