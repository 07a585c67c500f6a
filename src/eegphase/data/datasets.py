"""Map-style torch Datasets over the cache, one per mode, all reading windows the same way.

Windows are read from memory-mapped cache entries (see ``cache.py``): a window is one contiguous block of the
time-major array, so a read is a memcpy from the page cache. ``__getitems__`` lets the DataLoader fetch a whole
batch in one call, which skips the per-sample Python overhead of the default fetcher.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import Dataset

from eegphase.data.cache import CHUNK
from eegphase.data.manifest import Manifest
from eegphase.data.montage import hydrocel_names, layout_indices
from eegphase.data.splits import SplitConfig, assign_splits, attach_splits
from eegphase.data.windows import MODES

TARGETS = {
    "challenge1": ["rt_from_stimulus"],
    "challenge2": ["externalizing"],
    "pretrain": ["p_factor", "age", "sex"],
    "movies": [],
    "mixed": ["p_factor", "age", "sex"],
}


def windows_path(cache_dir: str | Path, mode: str) -> Path:
    return Path(cache_dir) / f"windows-{mode}.parquet"


def load_windows(cache_dir: str | Path, mode: str) -> pd.DataFrame:
    """The windows table that ``prepare`` wrote for ``mode``."""
    if mode not in MODES:
        raise KeyError(f"unknown mode {mode!r}; choose one of {list(MODES)}")
    path = windows_path(cache_dir, mode)
    if not path.exists():
        raise FileNotFoundError(f"no windows table {path}: run python -m eegphase.prepare first")
    return pd.read_parquet(path)


class WindowDataset(Dataset):
    """Windows of one mode and split. Each item is a dict of tensors:

    ``x`` (n_channels, n_samples) float32, ``y`` (n_targets,) float32 (NaN where unknown), ``channel_mask``
    (n_channels,) bool (True = a real channel, False = a zero channel padded in), ``subject`` (int index into
    ``self.subjects``) and ``index`` (row in ``self.windows``); movie windows add ``movie`` (int index into
    ``self.movies``) and ``time_bin``; mixed windows (a ``mix_weight`` column) add ``source`` (int index into
    ``self.sources``, the dataset names).
    """

    def __init__(
        self,
        cache_dir: str | Path,
        windows: pd.DataFrame,
        targets: Sequence[str] = (),
        crop_samples: int | None = None,
        random_crop: bool = False,
        layout: Sequence[str] | None = None,
        scale: float = 1.0,
        seed: int = 0,
    ):
        self.cache_dir = Path(cache_dir)
        self.windows = windows.reset_index(drop=True)
        missing = [t for t in targets if t not in self.windows]
        if missing:
            raise KeyError(
                f"target column(s) {missing} not in the windows table; available: {list(self.windows)}"
            )
        self.targets = list(targets)
        self.crop_samples = crop_samples
        self.random_crop = random_crop
        self.scale = float(scale)
        self.seed = seed
        self._keys = self.windows["key"].to_numpy()
        self._starts = self.windows["start"].to_numpy(np.int64)
        self._stops = self.windows["stop"].to_numpy(np.int64)
        n_targets = len(self.targets)
        self._y = np.zeros((len(self.windows), n_targets), np.float32)  # own, writable copy for torch
        if n_targets:
            self._y[:] = self.windows[self.targets].to_numpy(np.float32)
        self.subjects = sorted(self.windows["subject"].astype(str).unique())
        subject_index = {s: i for i, s in enumerate(self.subjects)}
        self._subject = self.windows["subject"].astype(str).map(subject_index).to_numpy(np.int64)
        self.movies = sorted(self.windows["movie"].unique()) if "movie" in self.windows else []
        if self.movies:
            self._movie = (
                self.windows["movie"].map({m: i for i, m in enumerate(self.movies)}).to_numpy(np.int64)
            )
            self._time_bin = self.windows["time_bin"].to_numpy(np.int64)
        self.sources = (
            sorted(self.windows["dataset"].astype(str).unique()) if "mix_weight" in self.windows else []
        )
        if self.sources:
            self._source = self.windows["dataset"].astype(str).map(self.sources.index).to_numpy(np.int64)
        manifest = Manifest.load(self.cache_dir).recordings.set_index("key")
        self._shapes = {
            k: (int(manifest.at[k, "n_times"]), int(manifest.at[k, "n_channels"])) for k in set(self._keys)
        }
        padded = manifest["n_padded_channels"] if "n_padded_channels" in manifest else pd.Series(dtype=int)
        self._masks = {  # zero channels a reader padded in (missing_channels=pad) are masked out
            k: np.array(self._meta(k)["channel_mask"], dtype=bool)
            for k in self._shapes
            if padded.get(k, 0) > 0
        }
        self.layout = list(layout) if layout is not None else None
        self._placement: dict[str, np.ndarray] = {}
        if self.layout is not None:
            for key in self._shapes:
                names = self._channel_names(key)
                self._placement[key] = (
                    layout_indices(names)
                    if self.layout == list(hydrocel_names())
                    else np.array([self.layout.index(n) if n in self.layout else -1 for n in names])
                )
        self._maps: dict[str, np.memmap] = {}
        self.epoch = 0  # random crops are drawn from (seed, epoch, window index): see set_epoch

    def _meta(self, key: str) -> dict:
        import json

        from eegphase.data.cache import MARKER

        return json.loads((self.cache_dir / "recordings" / f"{key}.zarr" / MARKER).read_text())

    def _channel_names(self, key: str) -> list[str]:
        return self._meta(key)["ch_names"]

    def __getstate__(self):
        state = self.__dict__.copy()
        state["_maps"] = {}  # memmaps are reopened in each worker, never pickled as copies
        return state

    def __len__(self) -> int:
        return len(self.windows)

    @property
    def sample_weights(self) -> np.ndarray | None:
        """Each window's training draw probability (mixed windows: ``mix_weight``); None: draw uniformly."""
        return self.windows["mix_weight"].to_numpy(np.float64) if "mix_weight" in self.windows else None

    def _memmap(self, key: str) -> np.memmap:
        array = self._maps.get(key)
        if array is None:
            path = self.cache_dir / "recordings" / f"{key}.zarr" / CHUNK
            array = np.memmap(path, dtype="<f4", mode="r", shape=self._shapes[key])
            self._maps[key] = array
        return array

    def set_epoch(self, epoch: int) -> None:
        """The epoch whose random crops to draw (the engine calls it with the samplers' ``set_epoch``).

        A crop is a pure function of (seed, epoch, window index), with no generator state: a run resumed
        from a checkpoint draws the crops an uninterrupted run draws, whatever the DataLoader workers.
        """
        self.epoch = int(epoch)

    def _crop_offset(self, i: int, length: int) -> int:
        if self.crop_samples is None or self.crop_samples >= length:
            return 0
        if not self.random_crop:
            return (length - self.crop_samples) // 2
        rng = np.random.default_rng([self.seed % 2**64, self.epoch, int(i)])
        return int(rng.integers(0, length - self.crop_samples + 1))

    def _read(self, i: int) -> np.ndarray:
        key = self._keys[i]
        start, stop = self._starts[i], self._stops[i]
        offset = self._crop_offset(i, stop - start)
        if self.crop_samples is not None and self.crop_samples < stop - start:
            start, stop = start + offset, start + offset + self.crop_samples
        block = self._memmap(key)[start:stop]  # (time, channels), one contiguous read
        return block

    def _item(self, i: int, x: np.ndarray, mask: np.ndarray) -> dict:
        item = {
            "x": torch.from_numpy(x),
            "y": torch.from_numpy(self._y[i]),
            "channel_mask": torch.from_numpy(mask),
            "subject": int(self._subject[i]),
            "index": int(i),
        }
        if self.movies:
            item["movie"] = int(self._movie[i])
            item["time_bin"] = int(self._time_bin[i])
        if self.sources:
            item["source"] = int(self._source[i])
        return item

    def _place(self, key: str, block: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.layout is None:
            x = np.ascontiguousarray(block.T)
            return x, self._masks[key].copy() if key in self._masks else np.ones(x.shape[0], dtype=bool)
        where = self._placement[key]
        x = np.zeros((len(self.layout), block.shape[0]), dtype=np.float32)
        keep = (where >= 0) & self._masks[key] if key in self._masks else where >= 0
        x[where[keep]] = block[:, keep].T
        mask = np.zeros(len(self.layout), dtype=bool)
        mask[where[keep]] = True
        return x, mask

    def __getitem__(self, i: int) -> dict:
        x, mask = self._place(self._keys[i], self._read(i))
        if self.scale != 1.0:
            x *= self.scale
        return self._item(i, x, mask)

    def __getitems__(self, indices: Sequence[int]) -> list[dict]:
        return [self[int(i)] for i in indices]


def subject_splits(cache_dir: str | Path, cfg: SplitConfig) -> pd.DataFrame:
    """The split of every subject in the cache (the same table for every mode)."""
    return assign_splits(Manifest.load(cache_dir).recordings, cfg)


def _keep_mix_shares(windows: pd.DataFrame, keep: pd.Series) -> pd.DataFrame:
    """The rows ``keep``; a ``mix_weight`` column is rescaled so each dataset keeps its share of the draws
    (its weight total over the whole table) whatever fraction of its windows the split holds."""
    kept = windows[keep]
    if "mix_weight" not in windows or not len(kept):
        return kept
    share = windows.groupby("dataset")["mix_weight"].sum()
    kept = kept.copy()
    kept["mix_weight"] = kept["dataset"].map(share / kept["dataset"].value_counts())
    return kept


def make_dataset(
    cache_dir: str | Path,
    mode: str,
    split: str | None,
    split_cfg: SplitConfig | None = None,
    targets: Sequence[str] | None = None,
    crop_s: float | None = None,
    train: bool | None = None,
    layout: Sequence[str] | None = None,
    scale: float = 1.0,
    seed: int = 0,
) -> WindowDataset:
    """The dataset of one mode and split; rows whose targets are unknown are dropped for supervised modes."""
    windows = load_windows(cache_dir, mode)
    if split is not None:
        windows = attach_splits(windows, subject_splits(cache_dir, split_cfg or SplitConfig()))
        windows = _keep_mix_shares(windows, windows["split"] == split)
    targets = list(TARGETS[mode] if targets is None else targets)
    if mode in ("challenge1", "challenge2") and targets:
        windows = windows.dropna(subset=targets)
    if mode == "mixed" and layout is None:
        layout = hydrocel_names()
    train = split == "train" if train is None else train
    crop = None
    if crop_s is not None:
        sfreq = float(Manifest.load(cache_dir).recordings["sfreq"].iloc[0])
        crop = int(round(crop_s * sfreq))
    return WindowDataset(
        cache_dir,
        windows,
        targets,
        crop_samples=crop,
        random_crop=train,
        layout=layout,
        scale=scale,
        seed=seed,
    )
