import torch
import torch.nn.functional as F

from eegphase.models.heads import (
    AuxiliaryHeads,
    ClassificationHead,
    FeatureStandardizer,
    ProjectionHead,
    RegressionHead,
)

from .helpers import train


def test_head_shapes():
    z = torch.randn(5, 16)
    assert RegressionHead(16)(z).shape == (5, 1)
    assert ClassificationHead(16, 3)(z).shape == (5, 3)
    assert ProjectionHead(16, 32, 8)(z).shape == (5, 8)
    aux = AuxiliaryHeads(16)(z)
    assert aux["p_factor"].shape == aux["age"].shape == (5,) and aux["sex"].shape == (5, 2)


def test_auxiliary_heads_fit_fixed_targets():
    torch.manual_seed(0)
    heads = AuxiliaryHeads(16)
    z, p, age, sex = torch.randn(8, 16), torch.randn(8), torch.rand(8) * 3, torch.randint(0, 2, (8,))

    def loss():
        out = heads(z)
        return F.mse_loss(out["p_factor"], p) + F.mse_loss(out["age"], age) + F.cross_entropy(out["sex"], sex)

    first, last = train(heads.parameters(), loss, steps=150, lr=3e-2)
    assert last < first / 10


def test_feature_standardizer_exposes_small_differences_between_samples():
    """A pooled embedding whose samples differ by 1e-2 around a common value: the head's input must carry
    those differences at unit scale (LayerNorm, which normalises each sample over its features, does not)."""
    torch.manual_seed(0)
    common = torch.randn(16) * 5
    signal = torch.randn(64, 1)
    z = common + 1e-2 * signal * torch.ones(16)
    standardizer = FeatureStandardizer(16)
    out = standardizer(z)  # training mode: the first update takes the batch's statistics whole
    assert torch.allclose(out.std(0, unbiased=False), torch.ones(16), atol=1e-2)
    assert torch.corrcoef(torch.stack([out[:, 0], signal[:, 0]]))[0, 1] > 0.999
    layer_normed = torch.nn.functional.layer_norm(z, (16,))
    assert layer_normed.std(0).max() < 0.05  # what the old head saw: nearly the same vector for every sample


def test_feature_standardizer_uses_running_statistics_in_both_modes():
    """Training and eval normalise alike (by running statistics), so a forward does not depend on how a
    batch is composed; the first updates average cumulatively, later ones move at the momentum."""
    torch.manual_seed(0)
    standardizer = FeatureStandardizer(4, momentum=0.1)
    a, b = torch.randn(32, 4) + 2, torch.randn(32, 4) - 2
    standardizer(a)
    standardizer(b)
    assert torch.allclose(standardizer.running_mean, torch.cat([a, b]).mean(0), atol=1e-5)
    standardizer.eval()
    x = torch.randn(3, 4)
    first_alone = standardizer(x[:1])
    assert torch.allclose(standardizer(x)[:1], first_alone)  # eval: no batch statistics
    standardizer.train()
    before = standardizer.running_mean.clone()
    standardizer(torch.full((8, 4), 10.0))  # the third update: cumulative, weight 1/3
    assert torch.allclose(standardizer.running_mean, before + (10.0 - before) / 3, atol=1e-5)
    for _ in range(20):
        standardizer(torch.full((8, 4), 10.0))
    moved = standardizer.running_mean.clone()
    standardizer(torch.zeros(8, 4))  # long after: the momentum, 0.1
    assert torch.allclose(standardizer.running_mean, moved * 0.9, atol=1e-5)
