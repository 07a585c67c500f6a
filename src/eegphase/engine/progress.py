"""A tqdm bar showing samples per second, shown only on rank 0 when stderr is a terminal."""

from __future__ import annotations

import sys
import time

from tqdm.auto import tqdm


def progress_enabled(is_main: bool, requested: bool | None = None) -> bool:
    """``requested`` None means auto: on for rank 0 on a TTY, off in logs, CI and other ranks."""
    if not is_main:
        return False
    if requested is not None:
        return requested
    return sys.stderr.isatty()


class ProgressBar:
    """Thin wrapper that counts samples between refreshes so the bar costs nothing per step."""

    def __init__(self, total: int | None, desc: str, enabled: bool):
        self._bar = None
        if enabled:
            self._bar = tqdm(total=total, desc=desc, unit="batch", dynamic_ncols=True, leave=False)
        self._samples = 0
        self._start = time.perf_counter()

    def update(self, batches: int, samples: int, postfix: dict[str, float] | None = None) -> None:
        """Advance by ``batches`` and refresh the samples/s figure."""
        if self._bar is None:
            return
        self._samples += samples
        rate = self._samples / max(time.perf_counter() - self._start, 1e-9)
        shown = {"samples/s": f"{rate:.0f}", **{k: f"{v:.4g}" for k, v in (postfix or {}).items()}}
        self._bar.set_postfix(shown, refresh=False)
        self._bar.update(batches)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
