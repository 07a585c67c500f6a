"""``python -m eegphase.bench data``: preprocessing and window-loading throughput, side by side.

1. Preprocessing, one process each, on the same 500 Hz EEGLAB files: eegphase's path (reader, polyphase
   resample, filter at 100 Hz, atomic cache write) against the plain per-file MNE path a careful user writes
   (read, ``raw.resample(100, method="polyphase")``, then ``raw.filter(0.5, 50)`` at the low rate, get_data;
   MNE refuses a 50 Hz low-pass at 100 Hz, where it is Nyquist, so there as in eegphase the resampler's
   anti-alias filter is the low-pass). Reported in hours of EEG per minute and as a ratio; a parallel build
   (n_jobs) is shown too.
2. The resampler alone, on the same recordings held in memory (float32, channels x time): eegphase's
   ``resample_poly`` against ``scipy.signal.resample_poly`` (same filter and output; the largest absolute
   difference is reported beside the ratio).
3. Window loading: batches of 256 windows (129 x 200 float32) through a DataLoader, from the cache against
   slicing the same windows from numpy arrays held in RAM, same loader settings; at the training default
   ``num_workers`` (``conf/trainer/default.yaml``) and at ``--workers``.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import mne
import numpy as np
import pandas as pd
import scipy.signal
import torch
from torch.utils.data import DataLoader, Dataset, RandomSampler

from eegphase.bench import interleaved, write_results
from eegphase.data.build import build_cache
from eegphase.data.datasets import WindowDataset
from eegphase.data.manifest import Manifest
from eegphase.data.preprocess import PreprocessConfig
from eegphase.data.readers import make_reader
from eegphase.data.resample import rational_ratio, resample_poly
from eegphase.data.windows import WindowConfig, build_windows


def plain_mne(paths: list[Path], cfg: PreprocessConfig) -> None:
    """The per-file path a careful user writes with MNE alone: resample first (polyphase), then filter at the
    low rate, where it costs 5x less."""
    h_freq = cfg.h_freq if cfg.h_freq is not None and cfg.h_freq < cfg.sfreq / 2 else None
    for path in paths:
        raw = mne.io.read_raw_eeglab(path, preload=True, verbose=False)
        raw.resample(cfg.sfreq, method="polyphase", verbose=False)
        raw.filter(cfg.l_freq, h_freq, verbose=False)
        raw.get_data()


def resampler_rates(arrays: list[np.ndarray], sfreq: float, target: float, repeats: int) -> dict[str, float]:
    """Seconds of EEG resampled per second: eegphase's ``resample_poly`` and scipy's, interleaved, and the
    largest absolute difference between their outputs."""
    up, down = rational_ratio(sfreq, target)
    seconds = sum(a.shape[1] for a in arrays) / sfreq

    def rate(fn) -> float:
        start = time.perf_counter()
        for a in arrays:
            fn(a)
        return seconds / (time.perf_counter() - start)

    ours = lambda a: resample_poly(a, up, down)  # noqa: E731
    theirs = lambda a: scipy.signal.resample_poly(a, up, down, axis=1)  # noqa: E731
    rates = interleaved({"eegphase": lambda: rate(ours), "scipy": lambda: rate(theirs)}, repeats)
    diff = max(float(np.max(np.abs(ours(a) - theirs(a)))) for a in arrays)
    return {**rates, "max_abs_diff": diff}


class RamWindows(Dataset):
    """The baseline: the same windows sliced from (channels, time) arrays in RAM."""

    def __init__(self, arrays: dict[str, np.ndarray], windows: pd.DataFrame):
        self.arrays = arrays
        self.keys = windows["key"].to_numpy()
        self.starts = windows["start"].to_numpy()
        self.stops = windows["stop"].to_numpy()

    def __len__(self) -> int:
        return len(self.keys)

    def __getitem__(self, i: int) -> dict:
        x = self.arrays[self.keys[i]][:, self.starts[i] : self.stops[i]]
        return {"x": torch.from_numpy(np.ascontiguousarray(x)), "index": i}


def loader_rate(dataset: Dataset, batch_size: int, workers: int, n_batches: int, seed: int) -> float:
    """Windows per second over ``n_batches`` random batches (after one warm-up batch)."""
    generator = torch.Generator().manual_seed(seed)
    sampler = RandomSampler(
        dataset, replacement=True, num_samples=batch_size * (n_batches + 1), generator=generator
    )
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=workers)
    it = iter(loader)
    next(it)
    start = time.perf_counter()
    seen = 0
    for _ in range(n_batches):
        batch = next(it)
        seen += batch["x"].shape[0]
    rate = seen / (time.perf_counter() - start)
    del it
    return rate


def trainer_num_workers() -> int:
    """The training loaders' ``num_workers`` default (``conf/trainer/default.yaml``)."""
    from omegaconf import OmegaConf

    from eegphase.config import CONF_DIR

    return int(OmegaConf.load(Path(CONF_DIR) / "trainer" / "default.yaml").num_workers)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(prog="python -m eegphase.bench data")
    parser.add_argument("--subjects", type=int, default=4, help="synthetic subjects (500 Hz .set files)")
    parser.add_argument("--duration-scale", type=float, default=0.5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batches", type=int, default=20)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="loader workers beside the training default")
    parser.add_argument("--out-dir", type=Path, default=Path("."), help="folder for bench-data.json")
    parser.add_argument("--workdir", type=Path, default=None, help="keep data here instead of a temp folder")
    args = parser.parse_args(argv)
    mne.set_log_level("ERROR")
    from eegphase.data.synthetic import generate_hbn

    work = Path(args.workdir or tempfile.mkdtemp(prefix="eegphase-bench-"))
    raw_root = work / "hbn-set"
    if not (raw_root / "participants.tsv").exists():
        generate_hbn(
            raw_root,
            releases=["R1"],
            subjects_per_release=args.subjects,
            fmt="set",
            duration_scale=args.duration_scale,
            seed=0,
        )
    cfg = PreprocessConfig()
    reader = make_reader("hbn", raw_root)
    refs = [r for r in reader.discover()]
    paths = [r.path for r in refs]
    hours = sum(mne.io.read_raw_eeglab(p, preload=False).times[-1] for p in paths) / 3600.0

    def ours() -> float:
        cache = work / "cache-serial"
        shutil.rmtree(cache, ignore_errors=True)
        start = time.perf_counter()
        build_cache([reader], cache, cfg, n_jobs=1, progress=False)
        return hours / ((time.perf_counter() - start) / 60.0)

    def plain() -> float:
        start = time.perf_counter()
        plain_mne(paths, cfg)
        return hours / ((time.perf_counter() - start) / 60.0)

    rates = interleaved({"plain_mne": plain, "eegphase": ours}, args.repeats)
    loaded = [mne.io.read_raw_eeglab(p, preload=True).get_data().astype(np.float32) for p in paths]
    sfreq = float(mne.io.read_raw_eeglab(paths[0], preload=False).info["sfreq"])
    resampling = resampler_rates(loaded, sfreq, cfg.sfreq, args.repeats)
    del loaded
    cache = work / "cache"
    shutil.rmtree(cache, ignore_errors=True)
    start = time.perf_counter()
    manifest, _ = build_cache([reader], cache, cfg, n_jobs=args.n_jobs, progress=False)
    parallel_rate = hours / ((time.perf_counter() - start) / 60.0)

    windows = build_windows(manifest, "pretrain", WindowConfig())
    cached = WindowDataset(cache, windows)
    arrays = {
        k: np.ascontiguousarray(Manifest.load(cache).entry(k).memmap().T) for k in windows["key"].unique()
    }
    in_ram = RamWindows(arrays, windows)
    batch = min(256, len(windows))
    default_workers = int(trainer_num_workers())
    loads: dict[int, dict[str, float]] = {}
    for workers in dict.fromkeys([default_workers, args.workers]):
        loads[workers] = interleaved(
            {
                "ram": lambda w=workers: loader_rate(in_ram, batch, w, args.batches, 0),
                "cache": lambda w=workers: loader_rate(cached, batch, w, args.batches, 0),
            },
            args.repeats,
        )
    results = {
        "eeg_hours": hours,
        "recordings": len(paths),
        "preprocess_plain_mne_h_per_min": rates["plain_mne"],
        "preprocess_eegphase_h_per_min": rates["eegphase"],
        "preprocess_eegphase_parallel_h_per_min": parallel_rate,
        "preprocess_n_jobs": args.n_jobs,
        "preprocess_speedup_vs_mne": rates["eegphase"] / rates["plain_mne"],
        "resample_eegphase_s_per_s": resampling["eegphase"],
        "resample_scipy_s_per_s": resampling["scipy"],
        "resample_speedup_vs_scipy": resampling["eegphase"] / resampling["scipy"],
        "resample_max_abs_diff_vs_scipy": resampling["max_abs_diff"],
        "loader_batch_size": batch,
        "loader_default_workers": default_workers,
        "windows": len(windows),
    }
    for workers, rate in loads.items():
        results[f"loader_ram_windows_per_s_{workers}w"] = rate["ram"]
        results[f"loader_cache_windows_per_s_{workers}w"] = rate["cache"]
        results[f"loader_ratio_vs_ram_{workers}w"] = rate["cache"] / rate["ram"]
    results["loader_ratio_vs_ram"] = results[f"loader_ratio_vs_ram_{default_workers}w"]
    print(f"data: {len(paths)} recordings, {hours:.2f} h of 500 Hz EEG, {len(windows)} windows of 129x200")
    print(f"{'measurement':<44}{'value':>12}")
    print(f"{'preprocess, plain MNE (h EEG / min, 1 proc)':<44}{rates['plain_mne']:>12.2f}")
    print(f"{'preprocess, eegphase (h EEG / min, 1 proc)':<44}{rates['eegphase']:>12.2f}")
    print(f"{'preprocess, eegphase n_jobs=' + str(args.n_jobs) + ' (h EEG / min)':<44}{parallel_rate:>12.2f}")
    print(f"{'  preprocess_speedup_vs_mne (1 proc each)':<44}{results['preprocess_speedup_vs_mne']:>12.2f}")
    print(
        f"{'  resample, eegphase vs scipy.signal (speedup)':<44}{results['resample_speedup_vs_scipy']:>12.2f}"
    )
    for workers in loads:
        rows = [
            (f"windows/s, numpy in RAM ({workers} workers)", f"loader_ram_windows_per_s_{workers}w", ".0f"),
            (f"windows/s, zarr cache ({workers} workers)", f"loader_cache_windows_per_s_{workers}w", ".0f"),
            (f"  loader_ratio_vs_ram ({workers} workers)", f"loader_ratio_vs_ram_{workers}w", ".2f"),
        ]
        for label, key, fmt in rows:
            print(f"{label:<44}{results[key]:>12{fmt}}")
    path = write_results("data", results, args.out_dir)
    print(f"wrote {path}")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return results


if __name__ == "__main__":
    main()
