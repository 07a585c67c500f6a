"""The loop-overhead benchmark runs end to end and writes a flat bench-train.json."""

from __future__ import annotations

import json
import math

from eegphase.bench.train import main


def test_bench_train_writes_the_overhead_ratio(tmp_path, capsys):
    argv = ["--model", "mlp", "--precision", "fp32", "--batch-size", "4", "--steps", "3", "--repeats", "1"]
    results = main([*argv, "--out-dir", str(tmp_path)])
    written = json.loads((tmp_path / "bench-train.json").read_text())
    assert written == results
    assert math.isfinite(written["loop_overhead_ratio"]) and written["loop_overhead_ratio"] > 0
    assert (
        written["loop_overhead_ratio"]
        == written["loop_engine_samples_per_s"] / written["loop_bare_samples_per_s"]
    )
    assert "loop_overhead_ratio" in capsys.readouterr().out
