"""Phase transitions: loading a pretrained encoder from a real checkpoint file, and the freeze schedule."""

from __future__ import annotations

import pickle

import pytest
import torch
from torch import nn

from eegphase.engine.errors import CheckpointError
from eegphase.engine.transfer import load_encoder_weights, set_requires_grad


class _Encoder(nn.Module):
    def __init__(self, width: int = 3, extra: bool = False):
        super().__init__()
        self.inp = nn.Linear(4, width)
        self.out = nn.Linear(width, 2)
        if extra:
            self.adapter = nn.Linear(2, 2)


class _Pretrained(nn.Module):
    """The pretraining model: an encoder plus a pretraining-only head."""

    def __init__(self):
        super().__init__()
        self.encoder = _Encoder()
        self.code_head = nn.Linear(2, 8)


def _save(state: dict, path) -> None:
    torch.save({"model": state, "epoch": 3, "best_metric": 0.9}, path)


def test_loads_encoder_under_prefix_and_reports_missing_and_unexpected(tmp_path):
    pretrained = _Pretrained()
    state = {f"_orig_mod.{k}": v for k, v in pretrained.state_dict().items()}  # saved from a compiled model
    state["encoder.old_norm.weight"] = torch.ones(3)  # a layer the new encoder no longer has
    path = tmp_path / "pretrain.pt"
    _save(state, path)

    model = _Encoder(extra=True)
    report = load_encoder_weights(model, path, prefix="encoder.")
    assert torch.equal(model.inp.weight, pretrained.encoder.inp.weight)
    assert torch.equal(model.out.bias, pretrained.encoder.out.bias)
    assert sorted(report.missing) == ["adapter.bias", "adapter.weight"]
    assert report.unexpected == ["old_norm.weight"]
    assert "code_head.weight" not in report.unexpected  # outside the prefix: not the encoder's
    assert sorted(report.loaded) == ["inp.bias", "inp.weight", "out.bias", "out.weight"]


def test_prefix_is_found_automatically_and_module_prefix_stripped(tmp_path):
    encoder = _Encoder()
    path = tmp_path / "ddp.pt"
    _save({f"module.encoder.{k}": v for k, v in encoder.state_dict().items()}, path)
    model = _Encoder()
    report = load_encoder_weights(model, path)
    assert report.missing == [] and report.unexpected == []
    assert torch.equal(model.inp.weight, encoder.inp.weight)
    with pytest.raises(CheckpointError, match="decoder"):
        load_encoder_weights(model, path, prefix="decoder.")


def test_shape_mismatch_names_key_and_shapes_unless_allowed(tmp_path):
    path = tmp_path / "wide.pt"
    wide = _Encoder(width=5)
    _save({f"encoder.{k}": v for k, v in wide.state_dict().items()}, path)
    model = _Encoder(width=3)
    before = model.inp.weight.clone()
    with pytest.raises(CheckpointError, match=r"'inp\.weight'.*\(5, 4\).*\(3, 4\)"):
        load_encoder_weights(model, path)
    assert torch.equal(model.inp.weight, before)  # nothing loaded on failure

    report = load_encoder_weights(model, path, allow_shape_mismatch=True)
    assert report.skipped_shape["inp.weight"] == ((5, 4), (3, 4))
    assert set(report.skipped_shape) == {"inp.weight", "inp.bias", "out.weight"}
    assert report.loaded == ["out.bias"] and torch.equal(model.out.bias, wide.out.bias)


class _WritesAFile:
    """Unpickling this object would call open(path, 'w'): it must never happen when loading a checkpoint."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_checkpoint_with_a_pickled_object_is_refused_and_not_executed(tmp_path):
    trap = tmp_path / "was_executed.txt"
    # The trap is real: plain unpickling creates the file.
    sanity = tmp_path / "sanity.txt"
    pickle.loads(pickle.dumps(_WritesAFile(sanity))).close()
    assert sanity.exists()

    path = tmp_path / "evil.pt"
    torch.save({"model": _Encoder().state_dict(), "extra": _WritesAFile(trap)}, path)
    with pytest.raises(CheckpointError, match="evil.pt"):
        load_encoder_weights(_Encoder(), path)
    assert not trap.exists()


def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path):
    path = tmp_path / "notes.pt"
    path.write_text("these are not weights\n")
    with pytest.raises(CheckpointError, match="notes.pt"):
        load_encoder_weights(_Encoder(), path)
    no_model = tmp_path / "no_model.pt"
    torch.save({"epoch": 1}, no_model)
    with pytest.raises(CheckpointError, match="no 'model'"):
        load_encoder_weights(_Encoder(), no_model)


def test_set_requires_grad_freezes_and_unfreezes_every_parameter():
    encoder = nn.Linear(4, 3)
    set_requires_grad(encoder, False)
    assert not any(p.requires_grad for p in encoder.parameters())
    set_requires_grad(encoder, True)
    assert all(p.requires_grad for p in encoder.parameters())
