"""braindecode models as encoders: model=eegnex is braindecode's EEGNeX, any other one plugs in by config."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf
from torch import nn

from eegphase.config import CONF_DIR
from eegphase.models.braindecode import BraindecodeEncoder, braindecode_models
from eegphase.models.predictor import build_predictor
from eegphase.models.registry import build_encoder

from .helpers import fixed_batch


def _model_config(name: str) -> dict:
    return OmegaConf.to_container(OmegaConf.load(CONF_DIR / "model" / f"{name}.yaml"))


def test_model_eegnex_is_braindecodes_eegnex_up_to_its_final_layer():
    torch.manual_seed(0)
    predictor = build_predictor(_model_config("eegnex")).eval()
    assert type(predictor.encoder.model) is braindecode_models.EEGNeX
    torch.manual_seed(0)
    reference = braindecode_models.EEGNeX(n_chans=129, n_times=200, sfreq=100.0, n_outputs=1).eval()
    x = fixed_batch(3)
    features = []
    reference.final_layer.register_forward_hook(lambda module, args, out: features.append(args[0]))
    with torch.no_grad():
        reference(x)
        encoded = predictor.encoder(x)
    assert predictor.encoder.embed_dim == 48 and encoded.shape == (3, 48)
    torch.testing.assert_close(encoded, features[0], rtol=0, atol=0)
    assert predictor(x).shape == (3, 1)


def test_a_model_eegphase_does_not_ship_builds_from_its_config_and_every_weight_learns():
    config = _model_config("braindecode")
    assert config["encoder"]["model_class"] == "ShallowFBCSPNet"
    torch.manual_seed(0)
    predictor = build_predictor(config, n_outputs=1)
    assert type(predictor.encoder.model) is braindecode_models.ShallowFBCSPNet
    assert predictor.encoder.embed_dim == 40 * 7  # 40 spatial filters x 7 pooled steps of 200 samples
    F.mse_loss(predictor(fixed_batch(2)), torch.ones(2, 1)).backward()
    # the dropped classifier leaves no parameter behind that gets no gradient (DDP would stop on one)
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in predictor.parameters())


def test_embed_dim_keeps_the_final_layer_as_a_projection():
    encoder = BraindecodeEncoder("EEGNeX", embed_dim=16).eval()
    assert isinstance(encoder.model.final_layer, nn.Linear)  # braindecode's max-norm linear
    assert encoder.embed_dim == 16 and encoder(fixed_batch(2)).shape == (2, 16)


def test_an_unknown_braindecode_model_is_named():
    with pytest.raises(ValueError, match="braindecode.models has no model 'EEGNext'"):
        build_encoder("eegnex", model_class="EEGNext")
