"""Build encoders and channel adapters by name, so configs choose models and code just obeys.

``build_encoder("labram", size="base")`` (or ``"labram_base"``), ``"eegnex"``, ``"signal_jepa"``,
``"signal_jepa_prelocal"``, ``"tokenizer"``; keyword arguments override the size preset.
Every encoder exposes ``embed_dim``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from torch import nn

from eegphase.models.channel_adapters import PerceiverChannelAdapter, ZeroPadChannelMap
from eegphase.models.eegnex import EEGNeX
from eegphase.models.labram import LaBraM
from eegphase.models.signal_jepa import SignalJEPA, SignalJEPAPreLocal
from eegphase.models.tokenizer import NeuralTokenizer

LABRAM_SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"embed_dim": 32, "depth": 2, "num_heads": 2},
    "base": {"embed_dim": 200, "depth": 12, "num_heads": 10},  # ~5.8M parameters
    "large": {"embed_dim": 400, "depth": 24, "num_heads": 16},  # ~46M
    "huge": {"embed_dim": 800, "depth": 48, "num_heads": 16},  # ~369M
}
TOKENIZER_SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"embed_dim": 32, "depth": 2, "num_heads": 2, "decoder_depth": 1, "code_dim": 16, "n_codes": 64},
    "base": {"embed_dim": 200, "depth": 12, "num_heads": 10, "decoder_depth": 3},
}
SIGNAL_JEPA_SIZES: dict[str, dict[str, Any]] = {
    "tiny": {
        "conv_spec": ((8, 32, 8), (16, 2, 2), (16, 2, 2), (16, 2, 2)),
        "depth": 2,
        "num_heads": 2,
        "spat_dim": 8,
    },
    "base": {"depth": 8, "num_heads": 8},
}
_SIZED: dict[str, tuple[Callable[..., nn.Module], dict[str, dict[str, Any]]]] = {
    "labram": (LaBraM, LABRAM_SIZES),
    "tokenizer": (NeuralTokenizer, TOKENIZER_SIZES),
    "signal_jepa": (SignalJEPA, SIGNAL_JEPA_SIZES),
}
# As encoders, models return embeddings: EEGNeX's own output layer is off unless n_outputs is given.
_UNSIZED: dict[str, Callable[..., nn.Module]] = {
    "eegnex": partial(EEGNeX, n_outputs=None),
    "signal_jepa_prelocal": partial(SignalJEPAPreLocal, n_outputs=None),
}
ENCODER_NAMES = tuple(_SIZED) + tuple(_UNSIZED)


def resolve_encoder(name: str, size: str | None = None) -> tuple[str, str | None]:
    """The (name, size) that ``build_encoder`` would build, checked without building anything."""
    if name not in _SIZED and name not in _UNSIZED and "_" in name:
        base, _, suffix = name.rpartition("_")
        if base in _SIZED:
            name, size = base, suffix
    if name in _UNSIZED:
        if size is not None:
            raise ValueError(f"encoder {name!r} has no size presets (got size={size!r})")
        return name, None
    if name not in _SIZED:
        raise ValueError(f"unknown encoder {name!r}; known: {', '.join(ENCODER_NAMES)}")
    sizes = _SIZED[name][1]
    size = size or "base"
    if size not in sizes:
        raise ValueError(f"unknown size {size!r} for {name!r}; known: {', '.join(sizes)}")
    return name, size


def build_encoder(name: str, size: str | None = None, **kwargs: Any) -> nn.Module:
    """An encoder by name; ``size`` (or a ``_<size>`` suffix) picks a preset, ``kwargs`` override it."""
    name, size = resolve_encoder(name, size)
    if size is None:
        return _UNSIZED[name](**kwargs)
    cls, sizes = _SIZED[name]
    return cls(**{**sizes[size], **kwargs})


CHANNEL_ADAPTERS: dict[str, Callable[..., nn.Module]] = {
    "zero_pad": ZeroPadChannelMap,
    "perceiver": PerceiverChannelAdapter,
}


def build_channel_adapter(name: str | None, **kwargs: Any) -> nn.Module | None:
    """A channel adapter by name; ``None`` or ``"none"`` means the input already has the 129 channels."""
    if name in (None, "none"):
        return None
    if name not in CHANNEL_ADAPTERS:
        raise ValueError(f"unknown channel adapter {name!r}; known: none, {', '.join(CHANNEL_ADAPTERS)}")
    return CHANNEL_ADAPTERS[name](**kwargs)
