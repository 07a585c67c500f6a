"""Trainer behaviour: NaN detection, early stopping + best checkpoint, accumulation, precision, compile."""

from __future__ import annotations

import math

import pytest
import torch
from tiny_run import TinyNet, make_config, make_dataset, mse_step
from torch.utils.data import DataLoader

from eegphase.engine.checkpoint import load_checkpoint
from eegphase.engine.errors import NonFiniteLossError
from eegphase.engine.loop import Trainer
from eegphase.engine.precision import make_precision
from eegphase.engine.seeding import make_generator, seed_everything


def _loader(n: int = 48, batch_size: int = 8, shuffle: bool = False) -> DataLoader:
    return DataLoader(make_dataset(n), batch_size=batch_size, shuffle=shuffle, generator=make_generator(0))


def test_non_finite_loss_names_step_and_term(tmp_path):
    trainer: Trainer | None = None

    def step_fn(model, batch):
        x, y = batch
        mse = torch.nn.functional.mse_loss(model(x), y)
        aux = mse * (float("nan") if trainer.step == 3 else 0.5)
        return {"mse": mse, "aux": aux}, {}

    trainer = Trainer(
        TinyNet(), step_fn, make_config(tmp_path, grad_accum_steps=1, log_every=4), device="cpu"
    )
    with pytest.raises(NonFiniteLossError, match=r"step 3 \(epoch 0, batch 3\): term 'aux' = nan"):
        trainer.fit(_loader(), epochs=1)
    assert not (tmp_path / "last.pt").exists()


def test_early_stopping_and_best_checkpoint(tmp_path):
    scores = iter([3.0, 1.0, 2.0, 2.5, 0.1, 0.1])  # best at epoch index 1, then 2 epochs without improvement

    def eval_fn(model, batch):
        return {"score": next(scores)}

    seed_everything(0)
    config = make_config(tmp_path / "es", monitor="val/score", monitor_mode="min", patience=2)
    trainer = Trainer(TinyNet(dropout=0.1), mse_step, config, eval_fn=eval_fn, device="cpu")
    result = trainer.fit(_loader(shuffle=True), _loader(8, 8), epochs=6)
    assert result.stopped_early and result.epochs_completed == 4
    assert result.best_epoch == 1 and result.best_metric == 1.0
    best = load_checkpoint(tmp_path / "es" / "best.pt")
    assert best["epoch"] == 2 and best["best_metric"] == 1.0
    last = load_checkpoint(tmp_path / "es" / "last.pt")
    assert last["epoch"] == 4
    assert not torch.equal(best["model"]["head.weight"], last["model"]["head.weight"])
    # best.pt holds the weights after 2 epochs of the same 6-epoch schedule: rerun and stop there.
    seed_everything(0)
    reference = Trainer(TinyNet(dropout=0.1), mse_step, make_config(None), device="cpu")
    reference.on_epoch_end = lambda t, m: t.request_stop() if t.epoch == 2 else None
    reference.fit(_loader(shuffle=True), _loader(8, 8), epochs=6)
    for key, value in reference.model.state_dict().items():
        assert torch.equal(best["model"][key], value), key


def test_monitor_max_mode_and_missing_metric(tmp_path):
    scores = iter([0.2, 0.5, 0.4])
    config = make_config(tmp_path, monitor="val/acc", monitor_mode="max", patience=5)
    trainer = Trainer(TinyNet(), mse_step, config, eval_fn=lambda m, b: {"acc": next(scores)}, device="cpu")
    result = trainer.fit(_loader(), _loader(8, 8), epochs=3)
    assert result.best_metric == 0.5 and result.best_epoch == 1 and not result.stopped_early
    wrong = Trainer(TinyNet(), mse_step, make_config(None, monitor="val/auc"), device="cpu")
    with pytest.raises(KeyError, match="val/auc"):
        wrong.fit(_loader(), _loader(8, 8), epochs=1)


def test_gradient_accumulation_matches_the_large_batch():
    """4 micro-batches of 4, accumulated, take the same steps as batches of 16 (ragged last group too)."""
    results = []
    for batch_size, accum in ((16, 1), (4, 4)):
        torch.manual_seed(0)
        trainer = Trainer(TinyNet(), mse_step, make_config(None, grad_accum_steps=accum), device="cpu")
        trainer.fit(_loader(40, batch_size), epochs=2)  # 40 = 2 full groups of 16 + a group of 8
        results.append(trainer)
    assert results[0].step == results[1].step == 6
    for key, value in results[0].model.state_dict().items():
        torch.testing.assert_close(results[1].model.state_dict()[key], value, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("precision", ["bf16", "fp16", "fp32"])
def test_precision_paths_run_on_cpu(precision):
    seen = []

    def step_fn(model, batch):
        x, y = batch
        pred = model(x)
        seen.append(pred.dtype)
        return torch.nn.functional.mse_loss(pred.float(), y), {}

    torch.manual_seed(0)
    model = TinyNet()
    before = model.head.weight.detach().clone()
    trainer = Trainer(model, step_fn, make_config(None, precision=precision), device="cpu")
    result = trainer.fit(_loader(), epochs=1)
    expected = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[precision]
    assert set(seen) == {expected}
    assert model.head.weight.dtype == torch.float32  # autocast, not a cast of the weights
    assert not torch.equal(before, model.head.weight)
    assert math.isfinite(result.history[-1]["train_epoch/loss"])
    assert trainer.scaler.is_enabled() == (precision == "fp16")  # loss scaling only for fp16


def test_precision_names_are_checked():
    assert make_precision("fp16", "cpu").make_scaler().is_enabled()
    assert make_precision("auto", "cpu").name in {"bf16", "fp32"}
    with pytest.raises(ValueError, match="'half'"):
        make_precision("half", "cpu")


@pytest.mark.slow  # minutes of end-to-end work: make test-slow (CI runs it)
def test_compile_flag_trains_and_saves_clean_keys(tmp_path):
    torch.manual_seed(0)
    eager = Trainer(TinyNet(), mse_step, make_config(None, grad_accum_steps=1), device="cpu")
    eager.fit(_loader(), epochs=1)
    torch.manual_seed(0)
    trainer = Trainer(
        TinyNet(), mse_step, make_config(tmp_path, compile=True, grad_accum_steps=1), device="cpu"
    )
    trainer.fit(_loader(), epochs=1)
    assert trainer.train_model is not trainer.model  # the compiled wrapper was used for training
    saved = load_checkpoint(tmp_path / "last.pt")["model"]
    assert saved.keys() == eager.model.state_dict().keys()
    assert not any("_orig_mod" in key for key in saved)
    for key, value in eager.model.state_dict().items():
        torch.testing.assert_close(saved[key], value, rtol=1e-4, atol=1e-5)


def test_on_log_receives_train_metrics_every_n_steps():
    logged = []
    config = make_config(None, grad_accum_steps=1, log_every=2)
    trainer = Trainer(TinyNet(), mse_step, config, on_log=lambda m, s: logged.append((s, m)), device="cpu")
    trainer.fit(_loader(), _loader(8, 8), epochs=1)
    steps = [s for s, m in logged if "train/loss" in m]
    assert steps == [2, 4, 6]
    assert all(m["train/loss"] == pytest.approx(m["train/mse"]) and m["lr"] > 0 for s, m in logged[:3])
    epoch_end = logged[-1][1]
    assert epoch_end["epoch"] == 1.0 and {"val/loss", "val/mse", "train_epoch/loss"} <= epoch_end.keys()
    window_means = [m["train/loss"] for s, m in logged[:3]]
    assert epoch_end["train_epoch/loss"] == pytest.approx(sum(window_means) / 3)
