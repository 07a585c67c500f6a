"""Patch masks for masked EEG modelling (LaBraM): random masks with an exact ratio, and their inverse.

Symmetric masking trains on a mask and on its complement; the cheapest way is one forward of the batch
stacked twice: ``x2 = torch.cat([x, x])``, ``mask2 = torch.cat([mask, ~mask])``.
"""

from __future__ import annotations

import torch


def random_patch_mask(
    batch: int,
    n_tokens: int,
    ratio: float = 0.5,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Bool (batch, n_tokens), True = masked, exactly ``round(ratio * n_tokens)`` per row."""
    if not 0.0 < ratio < 1.0:
        raise ValueError(f"mask ratio must be in (0, 1), got {ratio}")
    n_masked = round(ratio * n_tokens)
    scores = torch.rand(
        batch, n_tokens, generator=generator, device=generator.device if generator else device
    )
    ranks = scores.argsort(dim=1).argsort(dim=1)
    return (ranks < n_masked).to(device)


def symmetric_patch_masks(
    batch: int,
    n_tokens: int,
    ratio: float = 0.5,
    device: torch.device | str | None = None,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A random mask and its complement (LaBraM's symmetric masking)."""
    mask = random_patch_mask(batch, n_tokens, ratio, device, generator)
    return mask, ~mask
