"""The few ``timm.layers`` names the models use, for a scoring environment that has torch but not timm.

Same parameter names as timm (``fc1``/``fc2`` in ``Mlp``), so a state dict trained with timm loads as is;
``tests/export`` checks that the bundled model's outputs equal the timm-built ones.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.init import trunc_normal_

__all__ = ["DropPath", "Mlp", "trunc_normal_"]


class DropPath(nn.Module):
    """Stochastic depth: drops whole residual branches per sample while training, identity in eval."""

    def __init__(self, drop_prob: float = 0.0, scale_by_keep: bool = True):
        super().__init__()
        self.drop_prob, self.scale_by_keep = drop_prob, scale_by_keep

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.drop_prob == 0.0 or not self.training:
            return x
        keep = 1.0 - self.drop_prob
        mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
        return x * (mask / keep if self.scale_by_keep else mask)


class Mlp(nn.Module):
    """timm's two-layer MLP (Linear, act, dropout, Linear, dropout); only the arguments the models pass."""

    def __init__(
        self,
        in_features: int,
        hidden_features: int | None = None,
        out_features: int | None = None,
        act_layer: type[nn.Module] = nn.GELU,
        bias: bool = True,
        drop: float = 0.0,
    ):
        super().__init__()
        hidden_features = hidden_features or in_features
        out_features = out_features or in_features
        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias)
        self.act = act_layer()
        self.drop1 = nn.Dropout(drop)
        self.norm = nn.Identity()
        self.fc2 = nn.Linear(hidden_features, out_features, bias=bias)
        self.drop2 = nn.Dropout(drop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop2(self.fc2(self.norm(self.drop1(self.act(self.fc1(x))))))
