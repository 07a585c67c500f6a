"""The training benchmark runs end to end in a tiny mode and writes a flat bench-train.json; its FLOP counts
equal hand-computed ones. No wall time is asserted: timing is what the bench reports, not what tests check."""

from __future__ import annotations

import json
import math

import pytest
import torch

from eegphase.bench.train import (
    counted_flops,
    main,
    masked_modelling_loss,
    plain_transformer_loss,
    train_step,
    trainer_defaults,
)
from eegphase.engine.precision import Precision
from eegphase.models.registry import LABRAM_SIZES

LOOP = ["--model", "mlp", "--batch-size", "4", "--steps", "3", "--repeats", "1"]
LOOP_DATA = ["--subjects", "1", "--duration-scale", "0.05"]  # a tiny real cache (built once, see below)
# LaBraM tiny, a small codebook and GEMM, one timed step each; the compile path runs on dynamo's eager
# backend, which traces and guards like inductor but generates no C++ (seconds instead of minutes).
TINY = [
    *["--precision", "fp32", "--labram-size", "tiny", "--labram-batch-size", "2", "--n-codes", "64"],
    *["--gemm-size", "64", "--timed-steps", "1", "--compile-backend", "eager"],
    *["--compile-labram-batch-size", "2", "--compile-eegnex-batch-size", "2"],
]


@pytest.fixture(scope="module")
def loop_data(tmp_path_factory) -> list[str]:
    """The synthetic recordings and cache the loop measurement reads, shared by this module's runs."""
    return [*LOOP_DATA, "--work-dir", str(tmp_path_factory.mktemp("bench-train-data"))]


def _run(tmp_path, *argv: str) -> tuple[dict, dict]:
    results = main([*argv, "--out-dir", str(tmp_path)])
    return results, json.loads((tmp_path / "bench-train.json").read_text())


def test_bench_train_writes_the_overhead_ratio(tmp_path, capsys, loop_data):
    results, written = _run(
        tmp_path, *LOOP, *loop_data, "--ema-decay", "0.99", "--precision", "fp32", "--only", "loop_overhead"
    )
    assert written == results
    assert math.isfinite(written["loop_overhead_ratio"]) and written["loop_overhead_ratio"] > 0
    assert (
        written["loop_overhead_ratio"]
        == written["loop_engine_samples_per_s"] / written["loop_bare_samples_per_s"]
    )
    # what a real run does: the default clipping norm and workers, EMA as asked, batches from the cache
    defaults = trainer_defaults()  # conf/trainer/default.yaml
    assert written["loop_grad_clip_norm"] == defaults["grad_clip_norm"]
    assert written["loop_num_workers"] == defaults["num_workers"]
    assert written["loop_ema_decay"] == 0.99 and written["loop_steps_per_epoch"] >= 1
    assert "loop_overhead_ratio" in capsys.readouterr().out


def test_bench_train_reports_both_mfus_their_ratio_and_the_profile(tmp_path):
    _, written = _run(tmp_path, *TINY, "--only", "mfu", "optimizer", "--profile")
    for dtype in ("bf16", "fp32"):
        ratio = written["labram_tiny_mfu_" + dtype] / written["plain_transformer_mfu_" + dtype]
        assert written["labram_vs_plain_transformer_" + dtype] == pytest.approx(ratio) and ratio > 0
    assert written["labram_vs_plain_transformer"] == written["labram_vs_plain_transformer_bf16"]
    # the like-for-like arm: the same plain transformer, calling LaBraM's attention routine
    same = written["labram_tiny_mfu_bf16"] / written["plain_transformer_same_attention_mfu_bf16"]
    assert written["labram_vs_plain_transformer_same_attention"] == pytest.approx(same) and same > 0
    assert (
        written["labram_tiny_attention_gflop_per_step"]
        == written["plain_transformer_attention_gflop_per_step"]
        == written["plain_transformer_same_attention_attention_gflop_per_step"]
    )
    assert all(written[f"adamw_seconds_{kind}"] > 0 for kind in ("forloop", "foreach", "fused"))
    assert written["profile_labram_tiny_bf16_seconds"] > 0
    assert written["cpu_allocator"] == "keep"  # the run's default, for both arms
    assert all(
        written[f"{arm}_minor_faults_per_step_fp32"] >= 0 for arm in ("labram_tiny", "plain_transformer")
    )


@pytest.mark.slow  # every measurement, compile included: about 45 s on a busy 2-core machine
def test_bench_train_measures_everything_side_by_side(tmp_path, capsys, loop_data):
    results, written = _run(tmp_path, *LOOP, *loop_data, *TINY, "--profile")
    assert written == results
    headline = [
        "loop_overhead_ratio",
        "labram_tiny_mfu_bf16",
        "labram_tiny_mfu_fp32",
        "plain_transformer_mfu_bf16",
        "plain_transformer_mfu_fp32",
        "labram_vs_plain_transformer",
        "adamw_fused_speedup",
        "compile_speedup_labram",
        "compile_speedup_eegnex",
        "compile_seconds_labram",
        "compile_seconds_eegnex",
    ]
    numbers = {key: value for key, value in written.items() if not isinstance(value, str | None)}
    assert set(headline) <= set(numbers)
    assert all(math.isfinite(value) for value in numbers.values()), numbers
    for dtype in ("bf16", "fp32"):
        # MFU is achieved over peak, both measured in this run: the ratio follows from what was written.
        achieved, peak = written[f"labram_tiny_tflops_{dtype}"], written[f"matmul_peak_tflops_{dtype}"]
        assert written[f"labram_tiny_mfu_{dtype}"] == pytest.approx(achieved / peak)
        assert achieved > 0 and peak > 0
    assert written["labram_tiny_gflop_per_step"] > written["labram_tiny_attention_gflop_per_step"] > 0
    for dtype in ("bf16", "fp32"):
        ratio = written["labram_tiny_mfu_" + dtype] / written["plain_transformer_mfu_" + dtype]
        assert written["labram_vs_plain_transformer_" + dtype] == pytest.approx(ratio)
    assert written["labram_vs_plain_transformer"] == written["labram_vs_plain_transformer_bf16"]
    shares = [
        v for k, v in written.items() if k.startswith("profile_") and "_share_" in k and "adamw" not in k
    ]
    assert sum(shares) == pytest.approx(1.0) and all(0 <= v <= 1 for v in shares[:-1])
    for model in ("labram", "eegnex"):
        speedup = written[f"{model}_compiled_steps_per_s"] / written[f"{model}_eager_steps_per_s"]
        assert written[f"compile_speedup_{model}"] == pytest.approx(speedup)
        assert written[f"compile_backend_{model}"] == "eager"
    printed = capsys.readouterr().out
    assert all(key in printed for key in headline)


def test_bench_train_rejects_an_unknown_measurement(tmp_path):
    with pytest.raises(SystemExit):
        main(["--only", "nonsense", "--out-dir", str(tmp_path)])
    assert not (tmp_path / "bench-train.json").exists()


def _attention_flops(size: str, batch: int) -> int:
    """By hand: the stacked batch of both mask views (2 x batch) of 1 + 129 x 2 tokens, per block a forward
    of 4*B*H*N^2*Dh (QK^T and AV) and a backward of twice that."""
    preset = LABRAM_SIZES[size]
    heads, head_dim, n_tokens = preset["num_heads"], preset["embed_dim"] // preset["num_heads"], 1 + 129 * 2
    return preset["depth"] * 3 * 4 * (2 * batch) * heads * n_tokens**2 * head_dim


def _counted(loss_factory, batch: int, n_codes: int) -> tuple[int, int]:
    model, loss = loss_factory("tiny", batch, n_codes, torch.device("cpu"))
    optimizer = torch.optim.AdamW(model.parameters())
    return counted_flops(lambda: train_step(loss, optimizer, Precision("fp32", "cpu").autocast))


def test_flop_counts_equal_hand_computed_ones():
    batch, n_codes = 2, 64
    dim, depth = LABRAM_SIZES["tiny"]["embed_dim"], LABRAM_SIZES["tiny"]["depth"]
    tokens = 2 * batch * (1 + 129 * 2)
    rows = batch * 129 * 2  # the code head scores the masked patch tokens: half of both views
    # plain transformer, forward: per block qkv 3D^2, projection D^2, MLP 8D^2 (2 FLOPs a multiply-add), the
    # attention, then the code head; forward + backward = 3x (every weight and activation needs a gradient)
    linear = depth * 2 * tokens * dim * dim * (3 + 1 + 8) + 2 * rows * dim * n_codes
    total, attention = _counted(plain_transformer_loss, batch, n_codes)
    assert attention == _attention_flops("tiny", batch)
    assert total == 3 * linear + attention
    # LaBraM on the same shapes: the same attention FLOPs, counted (they were left out before)
    labram_total, labram_attention = _counted(masked_modelling_loss, batch, n_codes)
    assert labram_attention == _attention_flops("tiny", batch)
    assert labram_total > labram_attention
