"""AdamW with weight-decay groups and optional layer-wise lr decay, plus timm's warmup + cosine schedule.

Layer decay (BEiT/LaBraM fine-tuning) gives block ``i`` of ``L`` the lr scale ``decay ** (L + 1 - layer)``:
parameters before the first block (embeddings, cls and mask tokens) are layer 0, ``blocks.i`` is layer
``i + 1`` and everything after the last block (final norm, pooling, head) is layer ``L + 1`` with the full
lr. Models with a timm-style ``group_matcher`` use timm's own grouping instead.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

import torch
from timm.optim import param_groups_layer_decay
from timm.scheduler import CosineLRScheduler
from torch import nn

_BLOCK_PARAM = re.compile(r"(?:^|\.)blocks\.(\d+)\.")


@dataclass
class OptimizerConfig:
    """AdamW hyper-parameters; ``layer_decay`` None (or 1.0) means the same lr for every layer."""

    lr: float = 1e-3
    weight_decay: float = 0.05
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    layer_decay: float | None = None
    no_weight_decay: tuple[str, ...] = ()  # name substrings kept out of weight decay (beyond 1-D params)


@dataclass
class ScheduleConfig:
    """Linear warmup then cosine decay to ``min_lr``, stepped once per optimizer update."""

    warmup_epochs: float = 0.0
    warmup_lr_init: float = 0.0
    min_lr: float = 0.0


def _no_decay_names(model: nn.Module, extra: Iterable[str]) -> set[str]:
    """Names the model itself exempts (timm's ``no_weight_decay()`` convention) plus configured ones."""
    names = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    return names | set(extra)


def _skips_decay(name: str, param: torch.Tensor, no_decay: set[str]) -> bool:
    return param.ndim <= 1 or any(pattern in name for pattern in no_decay)


def head_side_parameter_names(model: nn.Module) -> set[str]:
    """Full names of the parameters that modules declare in ``head_parameter_names``: those that act after
    the blocks (an encoder's learned pooling) although ``named_parameters`` lists them before the blocks.
    They train at the head's rate under layer decay, and with the head when the encoder is frozen."""
    names = set()
    for prefix, module in model.named_modules():
        for name in getattr(module, "head_parameter_names", ()):
            if getattr(module, name, None) is not None:
                names.add(f"{prefix}.{name}" if prefix else name)
    return names


def block_layer_ids(model: nn.Module) -> dict[str, int]:
    """Layer id of every parameter by the ``blocks.<i>.`` rule (see module docstring); parameters named by
    :func:`head_side_parameter_names` sit after the last block."""
    names = [name for name, _ in model.named_parameters()]
    block_of = {name: int(m.group(1)) for name in names if (m := _BLOCK_PARAM.search(name))}
    if not block_of:
        raise ValueError(
            f"layer decay needs a model with `blocks` or a `group_matcher`; {type(model).__name__} has none"
        )
    num_blocks = max(block_of.values()) + 1
    first_block = min(i for i, name in enumerate(names) if name in block_of)
    head_side = head_side_parameter_names(model)
    layer_ids = {}
    for i, name in enumerate(names):
        if name in block_of:
            layer_ids[name] = block_of[name] + 1
        else:
            layer_ids[name] = 0 if i < first_block and name not in head_side else num_blocks + 1
    return layer_ids


def build_param_groups(model: nn.Module, cfg: OptimizerConfig) -> list[dict]:
    """Parameter groups with weight decay only on >=2-D weights and, if asked, an ``lr_scale`` per layer."""
    no_decay = _no_decay_names(model, cfg.no_weight_decay)
    use_layer_decay = cfg.layer_decay is not None and cfg.layer_decay != 1.0
    if use_layer_decay and hasattr(model, "group_matcher"):
        return param_groups_layer_decay(
            model,
            weight_decay=cfg.weight_decay,
            no_weight_decay_list=tuple(no_decay),
            layer_decay=cfg.layer_decay,
        )
    layer_ids = block_layer_ids(model) if use_layer_decay else {}
    top = max(layer_ids.values(), default=0)
    groups: dict[tuple[int, bool], dict] = {}
    # Frozen parameters stay in the optimizer (AdamW skips them while grad is None) so that a phase can
    # unfreeze an encoder later without rebuilding the optimizer.
    for name, param in model.named_parameters():
        layer = layer_ids.get(name, top)
        decay = not _skips_decay(name, param, no_decay)
        group = groups.setdefault(
            (layer, decay),
            {"params": [], "weight_decay": cfg.weight_decay if decay else 0.0, "lr_scale": 1.0},
        )
        if use_layer_decay:
            group["lr_scale"] = cfg.layer_decay ** (top - layer)
        group["params"].append(param)
    return list(groups.values())


def build_optimizer(model: nn.Module, cfg: OptimizerConfig) -> torch.optim.AdamW:
    """AdamW over :func:`build_param_groups` (call on the unwrapped, uncompiled model)."""
    groups = build_param_groups(model, cfg)
    for group in groups:
        group["lr"] = cfg.lr * group.get("lr_scale", 1.0)
    return torch.optim.AdamW(groups, lr=cfg.lr, betas=tuple(cfg.betas), eps=cfg.eps)


def build_scheduler(
    optimizer: torch.optim.Optimizer, cfg: ScheduleConfig, updates_per_epoch: int, epochs: int
) -> CosineLRScheduler:
    """timm's CosineLRScheduler counted in optimizer updates: ``step_update(n)`` after update ``n``."""
    total = max(1, updates_per_epoch * epochs)
    warmup = min(total - 1, int(math.ceil(cfg.warmup_epochs * updates_per_epoch)))
    # lr_scale in a group multiplies the scheduled value (timm's Scheduler.update_groups).
    for group in optimizer.param_groups:
        group.setdefault("initial_lr", group["lr"] / group.get("lr_scale", 1.0))
    return CosineLRScheduler(
        optimizer,
        t_initial=total - warmup,
        lr_min=cfg.min_lr,
        warmup_t=warmup,
        warmup_lr_init=cfg.warmup_lr_init,
        warmup_prefix=True,
        t_in_epochs=False,
    )
