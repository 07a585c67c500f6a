"""An encoder with a task head: what fine-tuning trains and what a challenge submission runs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from eegphase.models.channel_adapters import AdaptedEncoder
from eegphase.models.heads import ClassificationHead, RegressionHead
from eegphase.models.registry import build_channel_adapter, encoder_spec, instantiate_encoder

# The head of each task kind a fine-tuning task may have (pipeline.plan checks configs against these names).
HEADS: dict[str, type[nn.Module]] = {"regression": RegressionHead, "classification": ClassificationHead}
TASK_KINDS = tuple(HEADS)


class Predictor(nn.Module):
    """``head(encoder(x))`` for inputs (batch, channels, time); ``encoder`` keys are what phases hand over."""

    def __init__(self, encoder: nn.Module, head: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.head = head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))


def encoder_spec_of(model_cfg: Mapping[str, Any]) -> dict[str, Any]:
    """The ``_target_`` spec of a model config: its ``encoder`` node (conf/model/*.yaml), or, for configs
    written before encoders had targets, the shipped model its ``{name, size?, ...overrides}`` names."""
    if model_cfg.get("encoder") is not None:
        return dict(model_cfg["encoder"])
    ignored = ("name", "size", "channel_adapter", "pretrain_objective", "finetune_layer_decay", "kwargs")
    overrides = {k: v for k, v in model_cfg.items() if k not in ignored and v is not None}
    return encoder_spec(
        model_cfg["name"], model_cfg.get("size"), **overrides, **(model_cfg.get("kwargs") or {})
    )


def encoder_from_config(model_cfg: Mapping[str, Any]) -> nn.Module:
    """The encoder a ``model`` config builds: ``{encoder: {_target_, ...}, channel_adapter?}`` (see
    ``encoder_spec_of`` for the older ``{name, size, ...}`` form).

    ``channel_adapter``: ``zero_pad`` (the default; the datasets already zero-pad every recording onto the
    HydroCel layout, so the encoder is used bare) or ``perceiver`` (a learned adapter in front of it).
    """
    encoder = instantiate_encoder(encoder_spec_of(model_cfg))
    adapter_name = model_cfg.get("channel_adapter") or "zero_pad"
    if adapter_name == "zero_pad":
        return encoder
    if adapter_name != "perceiver":
        build_channel_adapter(adapter_name)  # names the known adapters
        raise ValueError(f"model.channel_adapter={adapter_name!r} cannot sit in front of an encoder")
    return AdaptedEncoder(build_channel_adapter(adapter_name), encoder)


def build_predictor(
    model_cfg: Mapping[str, Any], n_outputs: int = 1, task: str = "regression", dropout: float = 0.0
) -> Predictor:
    """Encoder from ``model_cfg`` plus a regression head (``n_outputs``) or a classification head (classes).

    The task kind is checked here too, for callers that build a predictor without a checked run config.
    """
    if task not in HEADS:
        raise ValueError(f"task must be one of {TASK_KINDS}, got {task!r}")
    encoder = encoder_from_config(model_cfg)
    return Predictor(encoder, HEADS[task](encoder.embed_dim, n_outputs, dropout=dropout))
