"""Exact resume: an interrupted run continued from ``last.pt`` ends with the same weights, bit for bit."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import torch
from tiny_run import TinyNet, make_config, make_dataset, mse_step
from torch.utils.data import DataLoader

from eegphase.engine.checkpoint import load_checkpoint
from eegphase.engine.loop import Trainer
from eegphase.engine.seeding import make_generator, seed_everything

SCRIPT = Path(__file__).with_name("tiny_run.py")


def _run(out: Path, epochs: int, *, stop_after: int | None = None, resume: bool = False, seed: int = 0):
    """Shuffled loader, dropout, EMA, accumulation, warmup+cosine, validation: all the RNG consumers."""
    seed_everything(seed)
    model = TinyNet(dropout=0.3)
    train = DataLoader(make_dataset(44), batch_size=6, shuffle=True, generator=make_generator(seed))
    val = DataLoader(make_dataset(16), batch_size=8)

    def stop(trainer: Trainer, metrics: dict) -> None:
        if stop_after is not None and trainer.epoch >= stop_after:
            trainer.request_stop()

    config = make_config(out, ema_decay=0.9, grad_accum_steps=3)
    trainer = Trainer(model, mse_step, config, on_epoch_end=stop, device="cpu")
    trainer.fit(train, val, epochs=epochs, resume_from=out / "last.pt" if resume else None)
    return trainer


def _assert_same_state(a: Trainer, b: Trainer) -> None:
    for key, value in a.model.state_dict().items():
        assert torch.equal(value, b.model.state_dict()[key]), key
    for key, value in a.ema.module.state_dict().items():
        assert torch.equal(value, b.ema.module.state_dict()[key]), f"ema {key}"
    assert a.step == b.step and a.epoch == b.epoch
    assert [g["lr"] for g in a.optimizer.param_groups] == [g["lr"] for g in b.optimizer.param_groups]


def test_resume_in_a_fresh_trainer_matches_an_uninterrupted_run(tmp_path):
    straight = _run(tmp_path / "straight", epochs=3)
    interrupted = _run(tmp_path / "split", epochs=3, stop_after=1)
    assert interrupted.epoch == 1
    assert not torch.equal(interrupted.model.head.weight, straight.model.head.weight)
    # A fresh trainer with other seeds, weights and loader order: the checkpoint must restore all of it.
    resumed = _run(tmp_path / "split", epochs=3, resume=True, seed=99)
    _assert_same_state(straight, resumed)
    assert resumed.history == straight.history


def test_sigkilled_subprocess_resumes_to_the_same_weights(tmp_path):
    args = ["--loader", "random", "--accum", "2", "--dropout", "0.2", "--epochs", "3"]
    run = [sys.executable, str(SCRIPT)]
    subprocess.run([*run, "--out", str(tmp_path / "straight"), *args], check=True, timeout=120)
    crashed = subprocess.run(
        [*run, "--out", str(tmp_path / "crash"), *args, "--kill-at-step", "5"], timeout=120
    )
    assert crashed.returncode == -signal.SIGKILL
    assert load_checkpoint(tmp_path / "crash" / "last.pt")["step"] == 3  # end of epoch 1 of 3 updates each
    subprocess.run([*run, "--out", str(tmp_path / "crash"), *args, "--resume"], check=True, timeout=120)

    straight = load_checkpoint(tmp_path / "straight" / "last.pt")
    resumed = load_checkpoint(tmp_path / "crash" / "last.pt")
    assert resumed["step"] == straight["step"] == 9
    for key, value in straight["model"].items():
        assert torch.equal(value, resumed["model"][key]), key


def test_resume_with_a_timm_ema_without_its_private_rounding_generator(tmp_path, monkeypatch):
    """``ModelEmaV3._sr_generator`` is private timm state: a timm without it saves and resumes all the same."""
    from timm.utils import ModelEmaV3

    original_init = ModelEmaV3.__init__

    def init_without_generator(self, *args, **kwargs):
        original_init(self, *args, **kwargs)
        if hasattr(self, "_sr_generator"):
            del self._sr_generator

    monkeypatch.setattr(ModelEmaV3, "__init__", init_without_generator)
    straight = _run(tmp_path / "straight", epochs=2)
    assert not hasattr(straight.ema, "_sr_generator")
    assert load_checkpoint(tmp_path / "straight" / "last.pt")["ema"]["sr_generator"] is None
    _run(tmp_path / "split", epochs=2, stop_after=1)
    resumed = _run(tmp_path / "split", epochs=2, resume=True, seed=99)
    _assert_same_state(straight, resumed)
