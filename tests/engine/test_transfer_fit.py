"""Weights that do not fit the model are an error naming the checkpoint and the model, never a silent no-op."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from eegphase.engine.errors import CheckpointError
from eegphase.engine.transfer import load_encoder_weights


class _Transformer(nn.Module):
    """Stands in for a LaBraM encoder: its own parameter names."""

    def __init__(self):
        super().__init__()
        self.patch_embed = nn.Linear(8, 4)
        self.blocks = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))


class _ConvNet(nn.Module):
    """Stands in for EEGNeX: other names entirely."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(2, 4, 3)
        self.conv2 = nn.Conv1d(4, 4, 3)


class _Grown(nn.Module):
    """The transformer with more new layers than old ones: most of it is not in an old checkpoint."""

    def __init__(self):
        super().__init__()
        self.patch_embed = nn.Linear(8, 4)
        self.extra = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))


def _save(module: nn.Module, path) -> None:
    torch.save({"model": {f"encoder.{k}": v for k, v in module.state_dict().items()}, "epoch": 1}, path)


def test_a_checkpoint_of_another_architecture_names_checkpoint_and_model(tmp_path):
    path = tmp_path / "labram-best.pt"
    _save(_Transformer(), path)
    model = _ConvNet()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(CheckpointError, match=r"labram-best\.pt.*_ConvNet.*model=eegnex") as err:
        load_encoder_weights(model, path, prefix="encoder.", model_name="eegnex")
    assert "0 of 4" in str(err.value)  # none of the model's 4 parameter tensors
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # nothing loaded


def test_most_of_the_encoder_missing_is_an_error_and_a_minority_is_not(tmp_path):
    path = tmp_path / "old.pt"
    _save(_Transformer(), path)
    with pytest.raises(CheckpointError, match=r"old\.pt.*_Grown.*missing 6 of 8"):
        load_encoder_weights(_Grown(), path, prefix="encoder.")
    # the other way round: the checkpoint holds all 8 and more; nothing of the model is missing
    report = load_encoder_weights(_Transformer(), path, prefix="encoder.")
    assert len(report.loaded) == 8 and report.missing == []
