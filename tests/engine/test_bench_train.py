"""The training benchmark runs end to end in a tiny mode and writes a flat bench-train.json."""

from __future__ import annotations

import json
import math

import pytest

from eegphase.bench.train import main

LOOP = ["--model", "mlp", "--batch-size", "4", "--steps", "3", "--repeats", "1"]
# LaBraM tiny, a small codebook and GEMM, one timed step each; the compile path runs on dynamo's eager
# backend, which traces and guards like inductor but generates no C++ (seconds instead of minutes).
TINY = [
    *["--precision", "fp32", "--labram-size", "tiny", "--labram-batch-size", "2", "--n-codes", "64"],
    *["--gemm-size", "64", "--timed-steps", "1", "--compile-backend", "eager"],
    *["--compile-labram-batch-size", "2", "--compile-eegnex-batch-size", "2"],
]


def _run(tmp_path, *argv: str) -> tuple[dict, dict]:
    results = main([*argv, "--out-dir", str(tmp_path)])
    return results, json.loads((tmp_path / "bench-train.json").read_text())


def test_bench_train_writes_the_overhead_ratio(tmp_path, capsys):
    results, written = _run(tmp_path, *LOOP, "--precision", "fp32", "--only", "loop_overhead")
    assert written == results
    assert math.isfinite(written["loop_overhead_ratio"]) and written["loop_overhead_ratio"] > 0
    assert (
        written["loop_overhead_ratio"]
        == written["loop_engine_samples_per_s"] / written["loop_bare_samples_per_s"]
    )
    assert "loop_overhead_ratio" in capsys.readouterr().out


def test_bench_train_measures_everything_side_by_side(tmp_path, capsys):
    results, written = _run(tmp_path, *LOOP, *TINY)
    assert written == results
    headline = [
        "loop_overhead_ratio",
        "labram_tiny_mfu_bf16",
        "labram_tiny_mfu_fp32",
        "compile_speedup_labram",
        "compile_speedup_eegnex",
        "compile_seconds_labram",
        "compile_seconds_eegnex",
    ]
    numbers = {key: value for key, value in written.items() if not isinstance(value, str)}
    assert set(headline) <= set(numbers)
    assert all(math.isfinite(value) for value in numbers.values()), numbers
    for dtype in ("bf16", "fp32"):
        # MFU is achieved over peak, both measured in this run: the ratio follows from what was written.
        achieved, peak = written[f"labram_tiny_tflops_{dtype}"], written[f"matmul_peak_tflops_{dtype}"]
        assert written[f"labram_tiny_mfu_{dtype}"] == pytest.approx(achieved / peak)
        assert achieved > 0 and peak > 0
    assert written["labram_tiny_gflop_per_step"] > 0
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
