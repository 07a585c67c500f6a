"""Our LaBraM computes braindecode's ``Labram`` given the same weights (and the state-dict mapping round trips).

Tolerance: both run in float32 and compute the same sums in other orders (our attention is
``scaled_dot_product_attention``, theirs an explicit softmax; our convs are unfold + GEMM, theirs ``Conv2d``;
our GroupNorm is a two-pass mean and variance, theirs a fused kernel), so outputs agree to float32 rounding
accumulated over two blocks: measured max |diff| 1.7e-6 and 2.1e-6 (outputs up to 3.6 in magnitude);
asserted 2e-5, about ten times that. A mapping error (a per-patch normalisation, the norm before pooling, a
misplaced row) moves the outputs by 0.5 to 1.3.
"""

import warnings

import pytest
import torch

from eegphase.models import electrodes
from eegphase.models.labram import LaBraM
from eegphase.models.labram_braindecode import (
    BRAINDECODE_CHECKED,
    electrode_rows,
    from_braindecode,
    labram_options,
    to_braindecode,
    to_eegphase,
)

with warnings.catch_warnings():
    warnings.simplefilter("ignore", FutureWarning)
    import braindecode
    from braindecode.models import Labram

NAMES = ["FP1", "FZ", "CZ", "C3", "PZ", "O2"]  # in both LaBraM's channel order and our electrode table
TOLERANCE = 2e-5


def test_braindecode_is_the_release_the_mapping_was_checked_against():
    """The key names, the cls-free temporal rows and ``fc_norm`` were read in braindecode 1.8.1's labram.py;
    another release may move them (rerun this file, read its labram.py, then update BRAINDECODE_CHECKED)."""
    major_minor = lambda v: tuple(v.split(".")[:2])  # noqa: E731
    assert major_minor(braindecode.__version__) == major_minor(BRAINDECODE_CHECKED), (
        f"braindecode {braindecode.__version__} is installed; eegphase.models.labram_braindecode was checked "
        f"against {BRAINDECODE_CHECKED}"
    )


def theirs(mean_pooling: bool = True, qkv_bias: bool = True, seed: int = 0) -> Labram:
    """A small braindecode Labram (2 blocks, 200-sample patches, 2 patches) with every weight random."""
    torch.manual_seed(seed)
    model = Labram(
        n_times=400,
        n_chans=len(NAMES),
        n_outputs=3,
        patch_size=200,
        num_layers=2,
        num_heads=10,
        qkv_bias=qkv_bias,
        use_mean_pooling=mean_pooling,
    ).eval()
    with torch.no_grad():  # zero-initialised biases and unit norms would hide a mapping that drops them
        for param in model.parameters():
            param.add_(0.1 * torch.randn_like(param))
    model.final_layer = torch.nn.Identity()
    return model


@pytest.mark.parametrize(("mean_pooling", "qkv_bias"), [(True, True), (False, False)])
def test_from_braindecode_computes_their_function(mean_pooling, qkv_bias):
    reference = theirs(mean_pooling, qkv_bias)
    ours = from_braindecode(reference).eval()
    if mean_pooling:
        assert {k: getattr(ours, k) for k in ("pooling", "final_norm")} == {
            "pooling": "mean",
            "final_norm": "pooled",
        }
    x = torch.randn(3, len(NAMES), 400)
    ch_idx = electrodes.electrode_index(NAMES)
    with torch.no_grad():
        expected = reference(x, ch_names=NAMES)
        got = ours(x, ch_idx=ch_idx)
        tokens_expected = reference(x, ch_names=NAMES, return_patch_tokens=True)
        tokens_got = ours(x, ch_idx=ch_idx, return_all_tokens=True)
    assert got.shape == expected.shape == (3, 200)
    torch.testing.assert_close(got, expected, rtol=0, atol=TOLERANCE)
    torch.testing.assert_close(tokens_got, tokens_expected, rtol=0, atol=TOLERANCE)
    # the spatial rows moved by name: another electrode order gives another function
    assert not torch.allclose(ours(x, ch_idx=ch_idx.flip(0)), expected, atol=1e-3)


def test_labram_options_with_their_weights_compute_their_function():
    """A LaBraM built from the config side (labram_options, not from_braindecode) takes their state dict."""
    reference = theirs()
    ours = LaBraM(
        n_chans=6, n_times=400, patch_size=200, embed_dim=200, depth=2, num_heads=10, **labram_options()
    )
    state, unmapped = to_eegphase(reference.state_dict(), ours.state_dict())
    _, missing_names = electrode_rows()
    assert sorted(unmapped) == sorted(f"position_embedding[{n}]" for n in missing_names)
    assert len(missing_names) == 34  # bipolar pairs, CFC*/CCP*, T1/T2, CB1/CB2, the *h positions
    result = ours.load_state_dict(state, strict=False)
    assert result.missing_keys == ["mask_token"] and not result.unexpected_keys
    x = torch.randn(2, 6, 400)
    with torch.no_grad():
        torch.testing.assert_close(
            ours.eval()(x, ch_idx=electrodes.electrode_index(NAMES)),
            reference(x, ch_names=NAMES),
            rtol=0,
            atol=TOLERANCE,
        )


def test_state_dict_round_trip():
    """Theirs -> ours -> theirs gives their tensors back (rows ours has no electrode for come from the
    template, a differently seeded model, and only those); ours -> theirs keeps the function."""
    reference = theirs(seed=0)
    template = theirs(seed=1).state_dict()
    ours = from_braindecode(reference)
    back, unmapped = to_braindecode(ours.state_dict(), template)
    assert unmapped == ["mask_token"]
    assert back.keys() == reference.state_dict().keys()
    rows, _ = electrode_rows()
    for key, value in reference.state_dict().items():
        if key == "position_embedding":
            kept = [0] + [p + 1 for p in rows]
            torch.testing.assert_close(back[key][:, kept], value[:, kept], rtol=0, atol=0)
            others = sorted(set(range(value.shape[1])) - set(kept))
            torch.testing.assert_close(back[key][:, others], template[key][:, others], rtol=0, atol=0)
        elif key == "temporal_embedding":  # the last row is one braindecode never reads (n_patches + 1 rows)
            torch.testing.assert_close(back[key][:, :2], value[:, :2], rtol=0, atol=0)
        else:
            torch.testing.assert_close(back[key], value, rtol=0, atol=0, msg=key)
    # ours -> theirs: a trained cls-row temporal embedding (ours has one, theirs not) joins the cls token
    with torch.no_grad():
        ours.pos_embed.temporal[0].normal_()
    moved = theirs(seed=2)
    state, _ = to_braindecode(ours.state_dict(), moved.state_dict())
    moved.load_state_dict(state)
    x = torch.randn(2, 6, 400)
    with torch.no_grad():
        torch.testing.assert_close(
            moved(x, ch_names=NAMES),
            ours.eval()(x, ch_idx=electrodes.electrode_index(NAMES)),
            rtol=0,
            atol=TOLERANCE,
        )


def official_names(state: dict) -> dict:
    """braindecode's tensors under the official code's names (modeling_finetune.NeuralTransformer as its
    pretraining checkpoint holds it: ``student.``, a 16-row ``time_embed``, ``mlp.fc1``/``fc2``)."""
    renamed = {}
    for key, value in state.items():
        key = key.replace("patch_embed.temporal_conv.", "patch_embed.").replace(
            "position_embedding", "pos_embed"
        )
        key = key.replace(".mlp.0.", ".mlp.fc1.").replace(".mlp.2.", ".mlp.fc2.")
        if key == "temporal_embedding":
            key, value = (
                "time_embed",
                torch.cat([value, torch.randn(1, 16 - value.shape[1], value.shape[2])], 1),
            )
        renamed["student." + key] = value
    renamed["lm_head.weight"] = torch.randn(8192, 200)
    return renamed


@pytest.mark.parametrize("flavour", ["braindecode", "official"])
def test_init_from_maps_a_foreign_labram_state_dict(tmp_path, flavour):
    """init_from (load_encoder_weights, as fine-tuning calls it) takes braindecode's or the official code's
    state dict: the model then computes their function; what does not map is reported by name."""
    from eegphase.engine.errors import CheckpointError
    from eegphase.engine.transfer import load_encoder_weights
    from eegphase.models.registry import build_encoder

    reference = theirs()
    state = reference.state_dict()
    state["final_layer.weight"] = torch.randn(3, 200)  # a classifier: not ours to load
    path = tmp_path / "labram.pt"
    torch.save({"model": official_names(state)} if flavour == "official" else state, path)
    ours = LaBraM(
        n_chans=6, n_times=400, patch_size=200, embed_dim=200, depth=2, num_heads=10, **labram_options()
    )
    report = load_encoder_weights(ours, path, prefix="encoder.")
    assert "mask_token" in report.missing
    assert "position_embedding[FP1-F7]" in report.unexpected or "pos_embed[FP1-F7]" in report.unexpected
    assert ("final_layer.weight" if flavour == "braindecode" else "lm_head.weight") in report.unexpected
    x = torch.randn(2, 6, 400)
    with torch.no_grad():
        torch.testing.assert_close(
            ours.eval()(x, ch_idx=electrodes.electrode_index(NAMES)),
            reference(x, ch_names=NAMES),
            rtol=0,
            atol=TOLERANCE,
        )
    with pytest.raises(CheckpointError, match="no LaBraM"):
        load_encoder_weights(build_encoder("eegnex"), path, prefix="encoder.")
