import pytest
import torch
import torch.nn.functional as F

from eegphase.models.eegnex import EEGNeX
from eegphase.models.registry import build_encoder

from .helpers import fixed_batch, train


def test_start_kit_shapes():
    assert build_encoder("eegnex").eval()(fixed_batch(2)).shape == (2, 48)  # as an encoder: embeddings
    model = build_encoder("eegnex", n_outputs=1).eval()
    x = fixed_batch(3)
    assert model(x).shape == (3, 1)
    assert model.forward_features(x).shape == (3, model.embed_dim) == (3, 48)
    encoder = EEGNeX(n_outputs=None).eval()
    assert encoder(x).shape == (3, 48)
    with pytest.raises(ValueError, match="expects"):
        model(torch.randn(1, 128, 200))


def test_max_norm_constraints_hold_after_training_steps():
    torch.manual_seed(0)
    model = EEGNeX(n_chans=8, n_times=200, drop_prob=0.0)
    x, y = fixed_batch(8, n_chans=8), torch.randn(8, 1)
    train(model.parameters(), lambda: F.mse_loss(model(x), y), steps=3, lr=0.5)
    model(x)
    spatial = model.features[4]
    assert spatial.weight.flatten(1).norm(dim=1).max() <= 1.0 + 1e-5
    assert model.final_layer.weight.norm(dim=1).max() <= 0.25 + 1e-5


def test_overfits_a_tiny_regression_batch():
    torch.manual_seed(0)
    model = EEGNeX(n_chans=8, n_times=200, drop_prob=0.0)
    x, y = fixed_batch(8, n_chans=8), torch.randn(8, 1)
    first, last = train(model.parameters(), lambda: F.mse_loss(model(x), y), steps=60, lr=1e-2)
    assert last < first / 10
