"""Build encoders with ``hydra.utils.instantiate`` from a ``_target_`` spec, and channel adapters by name.

An encoder spec is ``{"_target_": "package.module.Class", **constructor arguments}`` (a model config's
``encoder`` node, conf/model/*.yaml): any ``torch.nn.Module`` that maps (batch, 129, n_times) to (batch,
embed_dim) and says its ``embed_dim``; a braindecode model through
:class:`eegphase.models.braindecode.BraindecodeEncoder`. Short names stand for the shipped models' specs:
``encoder_spec("labram", size="base")`` (or ``"labram_base"``), ``"eegnex"``, ``"signal_jepa"``,
``"signal_jepa_prelocal"``, ``"tokenizer"``; keyword arguments override the size preset. Targets are named,
not imported, so a model's library (braindecode) loads only when that model is built.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from hydra.errors import InstantiationException
from hydra.utils import instantiate
from torch import nn

from eegphase.models.channel_adapters import PerceiverChannelAdapter, ZeroPadChannelMap

LABRAM_SIZES: dict[str, dict[str, Any]] = {
    "tiny": {"embed_dim": 32, "depth": 2, "num_heads": 2},
    "small": {"embed_dim": 64, "depth": 4, "num_heads": 4},  # ours (make run's default), not the paper's
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
_SIZED: dict[str, tuple[str, dict[str, dict[str, Any]]]] = {
    "labram": ("eegphase.models.labram.LaBraM", LABRAM_SIZES),
    "tokenizer": ("eegphase.models.tokenizer.NeuralTokenizer", TOKENIZER_SIZES),
    "signal_jepa": ("eegphase.models.signal_jepa.SignalJEPA", SIGNAL_JEPA_SIZES),
}
_UNSIZED: dict[str, dict[str, Any]] = {
    "eegnex": {"_target_": "eegphase.models.braindecode.BraindecodeEncoder", "model_class": "EEGNeX"},
    # as an encoder it returns its embedding: no output layer
    "signal_jepa_prelocal": {"_target_": "eegphase.models.signal_jepa.SignalJEPAPreLocal", "n_outputs": None},
}
ENCODER_NAMES = tuple(_SIZED) + tuple(_UNSIZED)


def resolve_encoder(name: str, size: str | None = None) -> tuple[str, str | None]:
    """The (name, size) that ``encoder_spec`` would spell out, checked without building anything."""
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


def encoder_spec(name: str, size: str | None = None, **kwargs: Any) -> dict[str, Any]:
    """The ``_target_`` spec of a shipped encoder by short name; ``size`` (or a ``_<size>`` suffix) picks a
    preset, ``kwargs`` override it."""
    name, size = resolve_encoder(name, size)
    if size is None:
        return {**_UNSIZED[name], **kwargs}
    target, sizes = _SIZED[name]
    return {"_target_": target, **sizes[size], **kwargs}


def _check_is_spec(spec: Any) -> None:
    if not isinstance(spec, Mapping) or not isinstance(spec.get("_target_"), str):
        raise ValueError(
            f"an encoder spec is a mapping with a '_target_' (a class's dotted path), got {spec!r}"
        )


def instantiate_encoder(spec: Mapping[str, Any]) -> nn.Module:
    """The module ``spec`` names (``hydra.utils.instantiate``), checked against the encoder contract."""
    _check_is_spec(spec)
    try:
        encoder = instantiate(dict(spec), _convert_="all")
    except InstantiationException as err:  # hydra wraps what the target raised: keep one error type
        raise ValueError(f"encoder {spec['_target_']}: {err}") from err
    if not isinstance(encoder, nn.Module) or not isinstance(getattr(encoder, "embed_dim", None), int):
        raise ValueError(
            f"encoder {spec['_target_']} built a {type(encoder).__name__} without an int embed_dim: an encoder "
            "is a torch.nn.Module that maps (batch, channels, times) to (batch, embed_dim) and says its embed_dim "
            "(a braindecode model: _target_: eegphase.models.braindecode.BraindecodeEncoder)"
        )
    return encoder


def check_encoder_spec(spec: Mapping[str, Any]) -> None:
    """Raise ValueError, naming it, when ``spec``'s ``_target_`` cannot be found; builds nothing."""
    _check_is_spec(spec)
    try:
        instantiate({"_target_": spec["_target_"], "_partial_": True})
    except InstantiationException as err:
        raise ValueError(f"encoder _target_ {spec['_target_']!r} not found: {err}") from err


def build_encoder(name: str, size: str | None = None, **kwargs: Any) -> nn.Module:
    """A shipped encoder by short name: ``instantiate_encoder(encoder_spec(name, size, **kwargs))``."""
    return instantiate_encoder(encoder_spec(name, size, **kwargs))


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
