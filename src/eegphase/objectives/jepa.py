"""SignalJEPA's self-supervised objective, written against modules passed in.

A context encoder sees the signal with some token regions hidden; a predictor maps its output to the
embeddings that a slowly moving (EMA) copy, the target encoder, gives those hidden regions from the full
signal. The loss compares predictions and layer-normalised targets at masked positions only. The target
encoder gets no gradient; it follows the context encoder through :func:`ema_update` with a momentum that
rises towards 1 (:class:`MomentumSchedule`).

Token layout used by :class:`BlockMaskSampler`: ``n_channels * n_times`` tokens, channel-major
(token index = channel * n_times + time), True = masked (hidden from the context encoder, predicted).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

JEPA_LOSSES = ("smooth_l1", "mse")


@dataclass
class JEPAResult:
    """``loss`` to backpropagate; ``target_std`` (detached) is a collapse alarm: it falls towards 0."""

    loss: torch.Tensor
    target_std: torch.Tensor
    n_masked: int

    def log_dict(self, prefix: str = "jepa/") -> dict[str, float]:
        return {f"{prefix}loss": float(self.loss.detach()), f"{prefix}target_std": float(self.target_std)}


def jepa_loss(
    predicted: torch.Tensor,
    target: torch.Tensor,
    mask: torch.Tensor,
    kind: str = "smooth_l1",
    normalize_target: bool = True,
) -> torch.Tensor:
    """Smooth L1 or MSE between predicted and (layer-normalised, detached) target embeddings at masked tokens.

    ``predicted`` and ``target`` are (B, N, D), ``mask`` (B, N) boolean.
    """
    if predicted.shape != target.shape or predicted.dim() != 3 or mask.shape != predicted.shape[:2]:
        raise ValueError(
            f"expected predicted and target (B, N, D) and mask (B, N); got {tuple(predicted.shape)}, "
            f"{tuple(target.shape)}, {tuple(mask.shape)}"
        )
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be boolean, got {mask.dtype}")
    target = target.detach().float()
    if normalize_target:
        target = F.layer_norm(target, target.shape[-1:])
    pred = predicted.float()[mask]
    tgt = target[mask]
    if tgt.numel() == 0:
        raise ValueError("no masked tokens: the mask selects nothing to predict")
    if kind == "smooth_l1":
        return F.smooth_l1_loss(pred, tgt)
    if kind == "mse":
        return F.mse_loss(pred, tgt)
    raise ValueError(f"unknown JEPA loss {kind!r}; expected one of {JEPA_LOSSES}")


def jepa_objective(
    x: torch.Tensor,
    mask: torch.Tensor,
    context_encoder: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    target_encoder: Callable[[torch.Tensor], torch.Tensor],
    predictor: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
    kind: str = "smooth_l1",
) -> JEPAResult:
    """One JEPA step's loss.

    ``target_encoder(x) -> (B, N, D)`` runs without gradient on the full input; ``context_encoder(x, mask)``
    encodes the input with the masked tokens hidden; ``predictor(context, mask) -> (B, N, D)`` predicts
    every token's target embedding (only masked ones are scored).
    """
    with torch.no_grad():
        target = target_encoder(x)
    context = context_encoder(x, mask)
    predicted = predictor(context, mask)
    loss = jepa_loss(predicted, target, mask, kind)
    # Spread of each embedding dimension over all tokens; it falls towards 0 if the targets collapse.
    normalized = F.layer_norm(target.float(), target.shape[-1:])
    target_std = normalized.reshape(-1, normalized.shape[-1]).std(dim=0).mean()
    return JEPAResult(loss=loss, target_std=target_std.detach(), n_masked=int(mask.sum()))


@torch.no_grad()
def ema_update(target: nn.Module, online: nn.Module, momentum: float) -> None:
    """target <- momentum * target + (1 - momentum) * online, for parameters; buffers are copied."""
    if not 0.0 <= momentum <= 1.0:
        raise ValueError(f"EMA momentum must be in [0, 1], got {momentum}")
    target_params = dict(target.named_parameters())
    online_params = dict(online.named_parameters())
    if target_params.keys() != online_params.keys():
        only_target = sorted(target_params.keys() - online_params.keys())[:5]
        only_online = sorted(online_params.keys() - target_params.keys())[:5]
        raise ValueError(
            f"EMA target and online modules differ: only in target {only_target}, "
            f"only in online {only_online}"
        )
    for name, param in target_params.items():
        param.lerp_(online_params[name].detach().to(param.dtype), 1.0 - momentum)
    online_buffers = dict(online.named_buffers())
    for name, buffer in target.named_buffers():
        if name in online_buffers:
            buffer.copy_(online_buffers[name])


def make_target_encoder(online: nn.Module) -> nn.Module:
    """A frozen deep copy of ``online`` to serve as the EMA target encoder."""
    target = copy.deepcopy(online)
    for param in target.parameters():
        param.requires_grad_(False)
    return target


@dataclass(frozen=True)
class MomentumSchedule:
    """EMA momentum rising from ``base`` to ``final`` over ``total_steps`` (cosine as in BYOL, or linear as in
    I-JEPA); held at ``final`` afterwards."""

    base: float = 0.996
    final: float = 1.0
    total_steps: int = 1
    kind: str = "cosine"

    def __post_init__(self) -> None:
        if not 0.0 <= self.base <= self.final <= 1.0:
            raise ValueError(f"need 0 <= base <= final <= 1, got base={self.base}, final={self.final}")
        if self.total_steps < 1:
            raise ValueError(f"total_steps must be >= 1, got {self.total_steps}")
        if self.kind not in ("cosine", "linear"):
            raise ValueError(f"unknown momentum schedule {self.kind!r}; expected 'cosine' or 'linear'")

    def __call__(self, step: int) -> float:
        progress = min(max(step, 0) / self.total_steps, 1.0)
        if self.kind == "linear":
            return self.base + (self.final - self.base) * progress
        return self.final - (self.final - self.base) * (math.cos(math.pi * progress) + 1.0) / 2.0


class BlockMaskSampler:
    """Samples masks over a (n_channels, n_times) token grid, flattened channel-major.

    ``mode="temporal"``: contiguous blocks of ``block_length`` time steps (all channels) until at least
    ``mask_ratio`` of the time steps are hidden. ``mode="spatial"`` (SignalJEPA's spatial blocks): the
    ``round(mask_ratio * n_channels)`` channels nearest a random centre channel are hidden at every time
    step; needs ``channel_positions`` (n_channels, 2 or 3). A 1-D token sequence is ``n_channels=1``.
    Each mask hides at least one token and leaves at least one visible.
    """

    def __init__(
        self,
        n_channels: int,
        n_times: int,
        mask_ratio: float = 0.5,
        mode: str = "temporal",
        block_length: int = 2,
        channel_positions: np.ndarray | torch.Tensor | None = None,
    ):
        if n_channels < 1 or n_times < 1 or n_channels * n_times < 2:
            raise ValueError(f"need at least 2 tokens, got n_channels={n_channels}, n_times={n_times}")
        if not 0.0 < mask_ratio < 1.0:
            raise ValueError(f"mask_ratio must be in (0, 1), got {mask_ratio}")
        if mode not in ("temporal", "spatial"):
            raise ValueError(f"unknown block-mask mode {mode!r}; expected 'temporal' or 'spatial'")
        self.n_channels, self.n_times, self.mask_ratio, self.mode = n_channels, n_times, mask_ratio, mode
        self.block_length = max(1, min(block_length, n_times))
        if mode == "temporal" and n_times < 2:
            raise ValueError("temporal block masking needs at least 2 time steps")
        if mode == "spatial":
            if n_channels < 2:
                raise ValueError("spatial block masking needs at least 2 channels")
            if channel_positions is None:
                raise ValueError("spatial block masking needs channel_positions (n_channels, 2 or 3)")
            positions = torch.as_tensor(np.asarray(channel_positions), dtype=torch.float32)
            if positions.shape[0] != n_channels or positions.dim() != 2:
                raise ValueError(
                    f"channel_positions must be ({n_channels}, 2 or 3), got {tuple(positions.shape)}"
                )
            # Channels ordered by distance from each possible centre, computed once.
            self._neighbours = torch.cdist(positions, positions).argsort(dim=1)

    def _temporal(self, generator: torch.Generator | None) -> torch.Tensor:
        target = min(max(round(self.mask_ratio * self.n_times), 1), self.n_times - 1)
        hidden = torch.zeros(self.n_times, dtype=torch.bool)
        while int(hidden.sum()) < target:
            start = int(torch.randint(0, self.n_times - self.block_length + 1, (1,), generator=generator))
            hidden[start : start + self.block_length] = True
        if bool(hidden.all()):
            hidden[int(torch.randint(0, self.n_times, (1,), generator=generator))] = False
        return hidden.unsqueeze(0).expand(self.n_channels, -1)

    def _spatial(self, generator: torch.Generator | None) -> torch.Tensor:
        n_hidden = min(max(round(self.mask_ratio * self.n_channels), 1), self.n_channels - 1)
        centre = int(torch.randint(0, self.n_channels, (1,), generator=generator))
        hidden = torch.zeros(self.n_channels, dtype=torch.bool)
        hidden[self._neighbours[centre, :n_hidden]] = True
        return hidden.unsqueeze(1).expand(-1, self.n_times)

    def __call__(self, batch_size: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Boolean (batch_size, n_channels * n_times) mask, True = hidden from the context encoder."""
        sample = self._temporal if self.mode == "temporal" else self._spatial
        return torch.stack([sample(generator).reshape(-1) for _ in range(batch_size)])
