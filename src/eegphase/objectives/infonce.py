"""InfoNCE with in-batch negatives and a learnable temperature (CLIP-style).

Row i of ``anchor`` and row i of ``positive`` form a positive pair; every other row of the other side is a
negative, which is why the pair sampler (:mod:`eegphase.objectives.movie_pairs`) keeps one pair per
(movie, time bin) moment in a batch.

Symmetric (default): the mean of anchor->positive and positive->anchor cross-entropies, as in CLIP.
One-direction (``symmetric=False``): only anchor->positive, i.e. each anchor picks its positive among
all positives of the batch.

The temperature T is learnt as log(1/T) (CLIP's ``logit_scale``), initialised at T = 0.07 and clamped so
that 1/T stays in [1, 100] (T in [0.01, 1]): a larger scale makes the logits blow up in low precision.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class LearnableTemperature(nn.Module):
    """Holds log(1/T); ``forward()`` returns the clamped logit scale 1/T."""

    def __init__(self, initial: float = 0.07, min_temperature: float = 0.01, max_temperature: float = 1.0):
        super().__init__()
        if not 0.0 < min_temperature <= initial <= max_temperature:
            raise ValueError(
                f"need 0 < min_temperature <= initial <= max_temperature, got {min_temperature}, {initial}, "
                f"{max_temperature}"
            )
        self.log_scale = nn.Parameter(torch.tensor(math.log(1.0 / initial)))
        self.min_log_scale = math.log(1.0 / max_temperature)
        self.max_log_scale = math.log(1.0 / min_temperature)

    def forward(self) -> torch.Tensor:
        return self.log_scale.clamp(self.min_log_scale, self.max_log_scale).exp()

    @property
    def temperature(self) -> float:
        return float(1.0 / self.forward().detach())


def info_nce(
    anchor: torch.Tensor, positive: torch.Tensor, logit_scale: torch.Tensor | float, symmetric: bool = True
) -> dict[str, torch.Tensor]:
    """InfoNCE on (B, D) embeddings; returns the loss and (detached) mean cosines of positives and negatives.

    ``logit_scale`` is 1/T. Embeddings are L2-normalised here, so the logits are cosine similarities / T.
    """
    if anchor.dim() != 2 or anchor.shape != positive.shape:
        raise ValueError(
            f"expected anchor and positive (B, D) of equal shape, got {tuple(anchor.shape)} and "
            f"{tuple(positive.shape)}"
        )
    batch = anchor.shape[0]
    if batch < 2:
        raise ValueError(f"InfoNCE with in-batch negatives needs a batch of at least 2 pairs, got {batch}")
    a = F.normalize(anchor.float(), dim=-1)
    p = F.normalize(positive.float(), dim=-1)
    cosine = a @ p.T
    logits = cosine * logit_scale
    labels = torch.arange(batch, device=anchor.device)
    loss = F.cross_entropy(logits, labels)
    if symmetric:
        loss = (loss + F.cross_entropy(logits.T, labels)) / 2
    on_diagonal = torch.eye(batch, dtype=torch.bool, device=anchor.device)
    with torch.no_grad():
        pos_cos = cosine[on_diagonal].mean()
        neg_cos = cosine[~on_diagonal].mean()
        accuracy = (logits.argmax(dim=1) == labels).float().mean()
    return {"loss": loss, "pos_cos": pos_cos, "neg_cos": neg_cos, "accuracy": accuracy}


class InfoNCELoss(nn.Module):
    """InfoNCE with its own learnable temperature; put this module's parameters in the optimizer."""

    def __init__(
        self, initial_temperature: float = 0.07, symmetric: bool = True, min_temperature: float = 0.01
    ):
        super().__init__()
        self.temperature = LearnableTemperature(initial_temperature, min_temperature=min_temperature)
        self.symmetric = symmetric

    def forward(self, anchor: torch.Tensor, positive: torch.Tensor) -> dict[str, torch.Tensor]:
        scale = self.temperature()
        out = info_nce(anchor, positive, scale, self.symmetric)
        out["temperature"] = (1.0 / scale).detach()
        return out
