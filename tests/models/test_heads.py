import torch
import torch.nn.functional as F

from eegphase.models.heads import AuxiliaryHeads, ClassificationHead, ProjectionHead, RegressionHead

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
