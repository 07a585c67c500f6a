import pytest
from omegaconf import OmegaConf
from torch import nn

from eegphase.config import CONF_DIR
from eegphase.models.predictor import build_predictor
from eegphase.models.registry import (
    ENCODER_NAMES,
    LABRAM_SIZES,
    build_encoder,
    check_encoder_spec,
    instantiate_encoder,
)


@pytest.mark.parametrize(
    "name", ["labram_tiny", "tokenizer_tiny", "signal_jepa_tiny", "eegnex", "signal_jepa_prelocal"]
)
def test_every_encoder_builds_and_has_an_embed_dim(name):
    assert build_encoder(name).embed_dim > 0


def test_overrides_and_errors():
    assert build_encoder("labram", size="tiny", embed_dim=16).embed_dim == 16
    with pytest.raises(ValueError, match="unknown encoder"):
        build_encoder("resnet")
    with pytest.raises(ValueError, match="unknown size"):
        build_encoder("labram", size="giant")
    with pytest.raises(ValueError, match="no size presets"):
        build_encoder("eegnex", size="base")
    assert "labram" in ENCODER_NAMES


class MeanEncoder(nn.Module):
    """A researcher's own encoder: any module with an embed_dim."""

    def __init__(self, width: int = 3):
        super().__init__()
        self.embed_dim = width
        self.proj = nn.Linear(129, width)

    def forward(self, x):
        return self.proj(x.mean(2))


def test_any_module_with_an_embed_dim_is_an_encoder_by_its_target():
    model = build_predictor({"encoder": {"_target_": f"{__name__}.MeanEncoder", "width": 5}}, n_outputs=2)
    assert isinstance(model.encoder, MeanEncoder) and model.encoder.embed_dim == 5
    with pytest.raises(ValueError, match="torch.nn.Identity built a Identity without an int embed_dim"):
        instantiate_encoder({"_target_": "torch.nn.Identity"})
    with pytest.raises(ValueError, match="MeanEncoder.*unexpected keyword argument 'depth'"):
        instantiate_encoder({"_target_": f"{__name__}.MeanEncoder", "depth": 2})
    check_encoder_spec({"_target_": f"{__name__}.MeanEncoder"})
    with pytest.raises(ValueError, match="'eegphase.models.nowhere.Net' not found"):
        check_encoder_spec({"_target_": "eegphase.models.nowhere.Net"})


@pytest.mark.parametrize("path", sorted(CONF_DIR.glob("model/labram_*.yaml")), ids=lambda p: p.stem)
def test_each_labram_config_has_the_dims_of_its_registry_size(path):
    """labram_<size>.yaml writes its dims out; the registry's short name builds the same sizes."""
    encoder = OmegaConf.load(path).encoder
    size = path.stem.removeprefix("labram_")
    assert {k: encoder[k] for k in LABRAM_SIZES[size]} == LABRAM_SIZES[size]
