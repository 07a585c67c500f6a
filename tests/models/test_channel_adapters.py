import pytest
import torch

from eegphase.models.channel_adapters import PerceiverChannelAdapter, ZeroPadChannelMap, hydrocel_indices
from eegphase.models.electrodes import electrode_index, electrode_names
from eegphase.models.registry import build_channel_adapter


def test_electrode_table_starts_with_hydrocel():
    names = electrode_names()
    assert names[:2] == ("E1", "E2") and names[128] == "Cz" and len(names) == len(set(names))
    assert electrode_index(["e5", "cz", "Fp1"]).tolist()[:2] == [4, 128]
    with pytest.raises(ValueError, match="XYZ"):
        electrode_index(["XYZ"])


def test_zero_pad_places_channels_and_mask():
    x = torch.randn(2, 3, 50)
    target = torch.tensor([5, 0, 128])
    out, mask = ZeroPadChannelMap()(x, target)
    assert out.shape == (2, 129, 50) and mask.shape == (2, 129) and mask.dtype == torch.bool
    torch.testing.assert_close(out[:, [5, 0, 128]], x)
    assert mask[:, [0, 5, 128]].all() and mask.sum().item() == 6
    assert out[:, ~mask[0]].abs().sum() == 0
    with pytest.raises(ValueError, match="target_idx"):
        ZeroPadChannelMap()(x, torch.tensor([0, 1, 129]))


def test_ten_twenty_names_map_to_distinct_hydrocel_slots():
    idx = hydrocel_indices(["Cz", "Fp1", "Fp2", "O1", "O2", "E7"])
    assert idx[0] == 128 and idx[-1] == 6
    assert (idx < 129).all() and len(set(idx.tolist())) == 6
    with pytest.raises(ValueError, match="same HydroCel"):
        hydrocel_indices(["Cz", "Cz"])


@pytest.mark.parametrize("n_in", [7, 19, 64])
def test_perceiver_output_independent_of_input_channels(n_in):
    adapter = build_channel_adapter("perceiver", n_times=100, n_latent=129, dim=32, num_heads=4)
    x = torch.randn(2, n_in, 100)
    out = adapter(x, torch.arange(n_in))
    assert out.shape == (2, 129, 100)
    # masked channels do not influence the output
    mask = torch.ones(2, n_in, dtype=torch.bool)
    mask[:, -1] = False
    x2 = x.clone()
    x2[:, -1] += 10
    torch.testing.assert_close(adapter(x, torch.arange(n_in), mask), adapter(x2, torch.arange(n_in), mask))


def test_registry_names():
    assert build_channel_adapter("none") is None
    assert isinstance(build_channel_adapter("zero_pad"), ZeroPadChannelMap)
    assert isinstance(build_channel_adapter("perceiver", n_times=200), PerceiverChannelAdapter)
    with pytest.raises(ValueError, match="unknown channel adapter"):
        build_channel_adapter("bogus")
