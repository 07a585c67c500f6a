"""Choose the autocast dtype once (nanoGPT style) and hand the loop a context factory and a loss scaler."""

from __future__ import annotations

import contextlib
from contextlib import AbstractContextManager as ContextManager
from dataclasses import dataclass

import torch

PRECISIONS = ("auto", "bf16", "fp16", "fp32")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}


def cpu_supports_bf16() -> bool:
    """True when the CPU has native bf16 matmul (AMX or AVX512-BF16), where bf16 autocast pays off."""
    amx = getattr(torch.cpu, "_is_amx_tile_supported", lambda: False)()
    avx512_bf16 = getattr(torch.cpu, "_is_avx512_bf16_supported", lambda: False)()
    return bool(amx or avx512_bf16)


def resolve_precision(precision: str, device: torch.device) -> str:
    """Turn ``auto`` into a concrete choice for ``device``; reject unknown names."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision={precision!r} is not one of {PRECISIONS}")
    if precision != "auto":
        return precision
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "cpu":
        return "bf16" if cpu_supports_bf16() else "fp32"
    return "fp32"


@dataclass(frozen=True)
class Precision:
    """A resolved precision: which autocast to enter and whether fp16 loss scaling is needed."""

    name: str
    device_type: str

    @property
    def dtype(self) -> torch.dtype:
        return _DTYPES[self.name]

    def autocast(self) -> ContextManager:
        """A fresh autocast context (or a no-op for fp32)."""
        if self.name == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device_type, dtype=self.dtype)

    def make_scaler(self) -> torch.amp.GradScaler:
        """A GradScaler that is active only for fp16; bf16 and fp32 need no loss scaling."""
        return torch.amp.GradScaler(self.device_type, enabled=self.name == "fp16")


def make_precision(precision: str, device: torch.device | str) -> Precision:
    """Resolve ``precision`` (auto|bf16|fp16|fp32) for ``device``."""
    device = torch.device(device)
    return Precision(name=resolve_precision(precision, device), device_type=device.type)
