"""Small output heads that sit on an encoder embedding of width ``in_dim``."""

from __future__ import annotations

import torch
import torch.distributed as dist
from timm.layers import trunc_normal_
from torch import nn


def _sum_over_ranks(tensor: torch.Tensor) -> torch.Tensor:
    """In place over a running process group, else as is. Kept here (not engine.distributed) so that models
    import nothing from the engine: the challenge export bundles a model's imports for the scorer."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


class FeatureStandardizer(nn.Module):
    """Each embedding feature standardised over samples, with running statistics (what a linear probe does).

    Why not LayerNorm: it standardises each sample over its features, so features whose differences between
    samples are small next to their common value (a pooled embedding's usual state) reach the head almost
    constant; on the synthetic challenge data the heads then stayed at the mean. Why not BatchNorm: it
    normalises by the batch's own statistics, so a step depends on how a global batch is split over ranks
    (SyncBatchNorm is GPU-only). Here training batches update running statistics (summed over ranks, no
    gradient) and every forward, training or eval, uses the running ones: the first updates average
    cumulatively, later ones move at ``momentum``.
    """

    def __init__(self, dim: int, momentum: float = 0.05, eps: float = 1e-8):
        super().__init__()
        self.momentum, self.eps = momentum, eps
        self.register_buffer("running_mean", torch.zeros(dim))
        self.register_buffer("running_var", torch.ones(dim))
        self.register_buffer("updates", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def _update(self, z: torch.Tensor) -> None:
        # two reductions (mean, then squared deviations from it): E[z^2] - E[z]^2 cancels catastrophically in
        # float32 when the spread is small next to the mean, the very case this module is for
        flat = z.detach().float().reshape(-1, z.shape[-1])
        sums = _sum_over_ranks(torch.cat([flat.sum(0), flat.new_tensor([flat.shape[0]])]))
        count = sums[-1].clamp_min(1.0)
        mean = sums[:-1] / count
        var = _sum_over_ranks(((flat - mean) ** 2).sum(0)) / count
        rate = max(1.0 / float(self.updates + 1), self.momentum)
        self.running_mean.lerp_(mean, rate)
        self.running_var.lerp_(var, rate)
        self.updates += 1

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        if self.training:
            self._update(z)
        scale = torch.rsqrt(self.running_var + self.eps)
        return ((z.float() - self.running_mean) * scale).to(z.dtype)


class RegressionHead(nn.Module):
    """Embedding (B, D) -> (B, n_outputs) real values (response time, p_factor, age...)."""

    def __init__(self, in_dim: int, n_outputs: int = 1, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(
            FeatureStandardizer(in_dim), nn.Dropout(dropout), nn.Linear(in_dim, n_outputs)
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class ClassificationHead(nn.Module):
    """Embedding (B, D) -> (B, n_classes) logits."""

    def __init__(self, in_dim: int, n_classes: int, dropout: float = 0.0):
        super().__init__()
        self.net = nn.Sequential(
            FeatureStandardizer(in_dim), nn.Dropout(dropout), nn.Linear(in_dim, n_classes)
        )

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
