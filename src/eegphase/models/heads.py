"""Small output heads that sit on an encoder embedding of width ``in_dim``."""

from __future__ import annotations

import torch
from timm.layers import trunc_normal_
from torch import nn


class RegressionHead(nn.Module):
    """Embedding (B, D) -> (B, n_outputs) real values (response time, p_factor, age...)."""

    def __init__(self, in_dim: int, n_outputs: int = 1, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(in_dim), nn.Dropout(dropout), nn.Linear(in_dim, n_outputs))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class ClassificationHead(nn.Module):
    """Embedding (B, D) -> (B, n_classes) logits."""

    def __init__(self, in_dim: int, n_classes: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(in_dim), nn.Dropout(dropout), nn.Linear(in_dim, n_classes))

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class ProjectionHead(nn.Module):
    """SimCLR-style 2-layer MLP projection for contrastive losses: (B, D) -> (B, out_dim)."""

    def __init__(self, in_dim: int, hidden_dim: int = 512, out_dim: int = 128):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_dim, hidden_dim),
            nn.BatchNorm1d(hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, out_dim),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class AuxiliaryHeads(nn.Module):
    """Subject-level auxiliary targets: p_factor and age (regression), sex (2-class logits)."""

    def __init__(self, in_dim: int, dropout: float = 0.0):
        super().__init__()
        self.p_factor = RegressionHead(in_dim, 1, dropout)
        self.age = RegressionHead(in_dim, 1, dropout)
        self.sex = ClassificationHead(in_dim, 2, dropout)

    def forward(self, z: torch.Tensor) -> dict[str, torch.Tensor]:
        """{'p_factor': (B,), 'age': (B,), 'sex': (B, 2) logits}."""
        return {"p_factor": self.p_factor(z).squeeze(-1), "age": self.age(z).squeeze(-1), "sex": self.sex(z)}


class CodePredictionHead(nn.Module):
    """LaBraM's masked-modelling head: patch tokens -> logits over the tokenizer's codes (8192 by default).

    Logits are computed only at masked positions (gathered first): the 8192-way GEMM and the
    softmax that follows are the costliest memory traffic of pretraining, and unmasked rows are unused.
    ``forward(tokens (B, N, D), mask (B, N) bool) -> (M, n_codes)`` with M = mask.sum(), rows in
    row-major order of ``mask``; the matching targets are ``codes[mask]``.
    """

    def __init__(self, in_dim: int, n_codes: int = 8192):
        super().__init__()
        self.proj = nn.Linear(in_dim, n_codes)
        trunc_normal_(self.proj.weight, std=0.02)
        nn.init.zeros_(self.proj.bias)

    def forward(self, tokens: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        selected = tokens.reshape(-1, tokens.shape[-1]) if mask is None else tokens[mask]
        return self.proj(selected)
