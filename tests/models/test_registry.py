import pytest

from eegphase.models.registry import ENCODER_NAMES, build_encoder


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
