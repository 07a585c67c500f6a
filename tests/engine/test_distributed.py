"""torchrun with 2 gloo CPU processes gives the weights of 1 process with the same global batch."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tiny_run import TinyNet
from torch import nn

from eegphase.engine.checkpoint import load_checkpoint
from eegphase.engine.distributed import unwrap_model

SCRIPT = Path(__file__).with_name("tiny_run.py")


def _torchrun() -> list[str]:
    exe = Path(sys.executable).with_name("torchrun")
    return [str(exe)] if exe.exists() else [shutil.which("torchrun") or "torchrun"]


def test_two_gloo_processes_match_one_process(tmp_path):
    common = ["--loader", "distributed", "--global-batch", "8", "--accum", "2", "--epochs", "2"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path / "one"), *common],
        check=True,
        env=env,
        timeout=120,
    )
    subprocess.run(
        [
            *_torchrun(),
            "--standalone",
            "--nproc_per_node=2",
            str(SCRIPT),
            "--out",
            str(tmp_path / "two"),
            *common,
        ],
        check=True,
        env=env,
        timeout=180,
    )
    one = load_checkpoint(tmp_path / "one" / "last.pt")
    two = load_checkpoint(tmp_path / "two" / "last.pt")
    assert one["step"] == two["step"] == 6  # 48 samples / 8 per batch / 2 accumulated = 3 updates per epoch
    assert two["world_size"] == 2 and len(two["rng"]) == 2
    initial = _initial_weights()
    moved = False
    for key, value in one["model"].items():
        torch.testing.assert_close(two["model"][key], value, rtol=1e-5, atol=1e-6)
        moved = moved or not torch.equal(value, initial[key])
    assert moved, "training did not change the weights, so the comparison proves nothing"
    # Only rank 0 logs; its logged losses are the global (rank-averaged) ones, equal to the 1-process run's.
    assert not (tmp_path / "two" / "log-rank1.jsonl").exists()
    logs_one = [json.loads(line) for line in (tmp_path / "one" / "log-rank0.jsonl").read_text().splitlines()]
    logs_two = [json.loads(line) for line in (tmp_path / "two" / "log-rank0.jsonl").read_text().splitlines()]
    assert [e["step"] for e in logs_one] == [e["step"] for e in logs_two]
    train_logs = [(a, b) for a, b in zip(logs_one, logs_two, strict=True) if "train/loss" in a]
    assert [a["step"] for a, _ in train_logs] == [2, 3, 4, 6]  # every 2 updates and at epoch ends
    for a, b in train_logs:
        assert b["train/loss"] == pytest.approx(a["train/loss"], rel=1e-5)


def _initial_weights() -> dict[str, torch.Tensor]:
    """The script's initial weights (it seeds with 7 right before building the model)."""
    torch.manual_seed(7)
    return TinyNet().state_dict()


def test_unwrap_model_strips_ddp_and_compile_wrappers_in_any_nesting():
    plain = nn.Linear(3, 2)
    assert unwrap_model(plain) is plain
    for wrapped in (
        torch.compile(plain),
        nn.DataParallel(torch.compile(plain)),
        torch.compile(nn.DataParallel(plain)),
        nn.DataParallel(torch.compile(nn.DataParallel(torch.compile(plain)))),
    ):
        assert unwrap_model(wrapped) is plain


def test_unwrap_model_strips_a_real_ddp_wrapper(tmp_path):
    store = torch.distributed.FileStore(str(tmp_path / "store"), 1)
    torch.distributed.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        plain = nn.Linear(3, 2)
        ddp = nn.parallel.DistributedDataParallel(torch.compile(plain))
        assert unwrap_model(torch.compile(ddp)) is plain
    finally:
        torch.distributed.destroy_process_group()
