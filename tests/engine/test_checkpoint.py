"""Checkpoints hold only tensors and plain values; anything pickled is refused without being run."""

from __future__ import annotations

import pytest
import torch
from tiny_run import TinyNet, make_config, make_dataset, mse_step
from torch.utils.data import DataLoader

from eegphase.engine.checkpoint import load_checkpoint, save_checkpoint
from eegphase.engine.errors import CheckpointError
from eegphase.engine.loop import Trainer


class _Payload:
    """Unpickling this creates ``marker``: proof that the pickle ran."""

    def __init__(self, marker: str):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_pickled_payload_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "payload-ran"
    evil = tmp_path / "evil.pt"
    torch.save({"model": {"w": torch.zeros(2)}, "extra": _Payload(str(marker))}, evil)

    with pytest.raises(CheckpointError, match="evil.pt"):
        load_checkpoint(evil)
    trainer = Trainer(TinyNet(), mse_step, make_config(tmp_path / "run"), device="cpu")
    with pytest.raises(CheckpointError, match="refusing to load"):
        trainer.fit(DataLoader(make_dataset(), batch_size=8), epochs=1, resume_from=evil)
    assert not marker.exists()


def test_save_rejects_objects_and_names_the_key(tmp_path):
    with pytest.raises(CheckpointError, match=r"\['extra'\]\['obj'\]"):
        save_checkpoint({"extra": {"obj": _Payload("x")}}, tmp_path / "bad.pt")
    assert not (tmp_path / "bad.pt").exists()


def test_atomic_save_round_trips_and_leaves_no_temp_file(tmp_path):
    state = {"w": torch.arange(4.0), "epoch": 3, "nested": [{"a": 1.5, "b": None}], "name": "x"}
    path = save_checkpoint(state, tmp_path / "ck" / "last.pt")
    save_checkpoint({**state, "epoch": 4}, path)  # overwrite in place via os.replace
    loaded = load_checkpoint(path)
    assert (
        loaded["epoch"] == 4 and torch.equal(loaded["w"], state["w"]) and loaded["nested"] == state["nested"]
    )
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]


def test_missing_or_foreign_checkpoints_name_the_file(tmp_path):
    with pytest.raises(CheckpointError, match="nope.pt"):
        load_checkpoint(tmp_path / "nope.pt")
    foreign = save_checkpoint({"weights": torch.ones(1)}, tmp_path / "foreign.pt")
    trainer = Trainer(TinyNet(), mse_step, make_config(None), device="cpu")
    with pytest.raises(CheckpointError, match=r"foreign.pt lacks \['format', 'model'"):
        trainer.fit(DataLoader(make_dataset(), batch_size=8), epochs=1, resume_from=foreign)
