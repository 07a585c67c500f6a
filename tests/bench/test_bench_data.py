"""The data benchmark: its resampler arm compares like with like (scipy's output), and the whole bench writes
finite, positive ratios, at the training default num_workers too. No wall time is asserted."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from eegphase.bench.data import main, resampler_rates, trainer_num_workers


def test_resampler_arm_measures_the_same_output_as_scipy():
    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal((4, 5000)).astype(np.float32) for _ in range(2)]
    rates = resampler_rates(arrays, 500.0, 100.0, repeats=1)
    assert rates["eegphase"] > 0 and rates["scipy"] > 0
    assert rates["max_abs_diff"] < 1e-4  # float32 GEMM vs scipy's float64 loop, unit-variance input


@pytest.mark.slow  # synthetic .set files, two caches, MNE and loaders: about 30 s on a busy 2-core machine
def test_bench_data_writes_finite_ratios(tmp_path):
    tiny = [
        "--subjects",
        "1",
        "--duration-scale",
        "0.05",
        "--repeats",
        "1",
        "--batches",
        "2",
        "--n-jobs",
        "1",
    ]
    results = main([*tiny, "--workers", "1", "--workdir", str(tmp_path / "w"), "--out-dir", str(tmp_path)])
    written = json.loads((tmp_path / "bench-data.json").read_text())
    assert written == results
    default = trainer_num_workers()
    for key in ("preprocess_speedup_vs_mne", "resample_speedup_vs_scipy", "loader_ratio_vs_ram",
                f"loader_ratio_vs_ram_{default}w", "loader_ratio_vs_ram_1w"):  # fmt: skip
        assert math.isfinite(written[key]) and written[key] > 0, key
    assert written["loader_ratio_vs_ram"] == written[f"loader_ratio_vs_ram_{default}w"]
