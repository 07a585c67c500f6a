"""``init_from`` weights of another architecture stop the pipeline, FAILED, with a message naming both."""

from __future__ import annotations

import torch

from cli_helpers import run_cli
from eegphase.models.predictor import build_predictor

from .conftest import runs


def test_labram_weights_into_eegnex_fail_the_run(tiny_hbn, tmp_path):
    labram = build_predictor({"name": "labram", "size": "tiny", "channel_adapter": "zero_pad"})
    checkpoint = tmp_path / "labram-best.pt"  # what a LaBraM phase writes: {"model": state dict, ...}
    torch.save({"model": labram.state_dict(), "epoch": 1}, checkpoint)

    proc = run_cli(tmp_path, "+pipeline=baseline", "model=eegnex", f"phases.finetune.init_from={checkpoint}",
                   data_root=tiny_hbn, check=False)  # fmt: skip
    assert proc.returncode != 0
    lines = [line for line in proc.stderr.splitlines() if "CheckpointError" in line]
    assert lines, proc.stderr[-3000:]
    message = lines[-1]
    assert str(checkpoint) in message and "model=eegnex" in message and "loaded 0 of" in message, message
    frame = runs(tmp_path)
    finetune = frame[frame["tags.eegphase.phase"] == "finetune"]
    assert len(finetune) == 1 and finetune.iloc[0]["status"] == "FAILED"
    assert (frame[frame["tags.eegphase.phase"] == "pipeline"]["status"] == "FAILED").all()
