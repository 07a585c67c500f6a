"""A resumed phase run holds each metric step once: of the killed run's history it copies what was logged up
to the checkpoint it resumes from; what came after, the resume logs again (before, those steps appeared
twice). A real sqlite MLflow store, real checkpoint files; file times are set so that nothing depends on
how fast the machine is."""

from __future__ import annotations

import json
import os
from collections import Counter
from pathlib import Path

import pytest
from mlflow.entities import Metric

from eegphase.engine.checkpoint import save_checkpoint
from eegphase.pipeline.runner import logged_before_resume_point
from eegphase.tracking.mlflow_tracker import Tracker

T0 = 1_700_000_000_000  # ms: the tokenizer stage finished then; the encoder stage checkpointed 60 s later


def _stamp(path: Path, ms: int) -> None:
    os.utime(path, ns=(ms * 1_000_000, ms * 1_000_000))


def _log(tracker: Tracker, run_id: str, key: str, steps: list[int], ms: int) -> None:
    points = [Metric(key, float(step), ms + i, step) for i, step in enumerate(steps)]
    tracker.client.log_batch(run_id, metrics=points)


def _steps(tracker: Tracker, run_id: str, key: str) -> list[int]:
    return sorted(m.step for m in tracker.client.get_metric_history(run_id, key))


def _work(tmp_path: Path, encoder_checkpoint: bool) -> Path:
    """A pretraining work folder: the tokenizer stage done; the encoder checkpointed at step 30, or not yet."""
    work = tmp_path / "pretrain-abc"
    save_checkpoint({"step": 20}, work / "tokenizer" / "last.pt")
    (work / "tokenizer" / "done.json").write_text(json.dumps({"tokenizer/val/loss": 1.0}))
    _stamp(work / "tokenizer" / "last.pt", T0 - 1_000)
    _stamp(work / "tokenizer" / "done.json", T0)
    if encoder_checkpoint:
        save_checkpoint({"step": 30}, work / "encoder" / "last.pt")
        _stamp(work / "encoder" / "last.pt", T0 + 60_000)
    return work


@pytest.mark.parametrize("encoder_checkpoint", [True, False])
def test_resumed_run_holds_each_step_once(tmp_path, encoder_checkpoint):
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "eegphase")
    work = _work(tmp_path, encoder_checkpoint)
    with tracker.run("pretrain", {}) as killed:
        _log(tracker, killed, "tokenizer/train/loss", [0, 10, 20], T0 - 30_000)
        _log(tracker, killed, "tokenizer/epoch", [20], T0 - 900)  # just after its last checkpoint
        _log(tracker, killed, "train/loss", [10, 20, 30], T0 + 10_000)  # the encoder, before its checkpoint
        _log(tracker, killed, "epoch", [30], T0 + 60_001)  # the epoch's metrics, just after the checkpoint
        _log(tracker, killed, "train/loss", [40, 50], T0 + 70_000)  # after the checkpoint, then the kill
    with tracker.run("pretrain", {}) as resumed:
        tracker.copy_history([killed], resumed, keep=logged_before_resume_point(work))
        # the resume: the encoder from step 30 (its checkpoint), or from scratch (none was written)
        start = [40, 50, 60] if encoder_checkpoint else [10, 20, 30, 40, 50, 60]
        _log(tracker, resumed, "train/loss", start, T0 + 100_000)
        _log(tracker, resumed, "epoch", [30, 60] if not encoder_checkpoint else [60], T0 + 200_000)

    history = {key: _steps(tracker, resumed, key) for key in tracker.client.get_run(killed).data.metrics}
    twice = {key: [s for s, n in Counter(steps).items() if n > 1] for key, steps in history.items()}
    assert not any(twice.values()), f"steps logged twice in the resumed run: {twice}"
    assert history["tokenizer/train/loss"] == [0, 10, 20] and history["tokenizer/epoch"] == [20]
    assert history["train/loss"] == [10, 20, 30, 40, 50, 60]
    assert history["epoch"] == [30, 60]
