"""Checkpoint files that hold only tensors and plain python values, written atomically.

Loading always goes through ``torch.load(weights_only=True)``: a file carrying any other pickled object is
refused with :class:`CheckpointError` instead of being executed.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from eegphase.engine.errors import CheckpointError

_PLAIN_TYPES = (torch.Tensor, bool, int, float, str, bytes, type(None), torch.dtype, torch.device, torch.Size)


def check_plain(obj: Any, where: str = "checkpoint") -> None:
    """Raise CheckpointError naming the key path of the first value that is not a tensor or plain value."""
    if isinstance(obj, _PLAIN_TYPES):
        return
    if isinstance(obj, Mapping):
        for key, value in obj.items():
            if not isinstance(key, str | int):
                raise CheckpointError(f"{where}: key {key!r} is a {type(key).__name__}, not str or int")
            check_plain(value, f"{where}[{key!r}]")
        return
    if isinstance(obj, list | tuple):
        for i, value in enumerate(obj):
            check_plain(value, f"{where}[{i}]")
        return
    raise CheckpointError(f"{where} is a {type(obj).__name__}; only tensors and plain values allowed")


def save_checkpoint(state: Mapping[str, Any], path: str | Path) -> Path:
    """Write ``state`` via a temp file and ``os.replace``: a crash never leaves half a file at ``path``."""
    path = Path(path)
    check_plain(state, where=str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as handle:
            torch.save(dict(state), handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load with ``weights_only=True``; anything else is refused with a CheckpointError naming the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"refusing to load checkpoint {path}: it holds a pickled object that is not a tensor or plain "
            "value "
            f"(weights_only load failed: {reason})"
        ) from err
    except (RuntimeError, EOFError, OSError) as err:
        raise CheckpointError(f"checkpoint {path} cannot be read: {err}") from err
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {path} holds a {type(state).__name__}, expected a dict")
    return state


def require_keys(state: Mapping[str, Any], keys: tuple[str, ...], path: str | Path) -> None:
    """Fail with the file and the missing key rather than a bare KeyError deep in the resume code."""
    missing = [key for key in keys if key not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} lacks {missing}; it was not written by eegphase's Trainer")
