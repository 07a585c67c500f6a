"""Patch masks for masked EEG modelling (LaBraM): random masks with an exact ratio, and their inverse; and
the token mask of the real (not zero-padded) channels, with the mean over the tokens it keeps.

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


def channel_token_mask(channel_mask: torch.Tensor | None, n_tokens: int) -> torch.Tensor | None:
    """(B, C) real-channel mask -> (B, n_tokens) for channel-major tokens (token = channel * P + patch)."""
    if channel_mask is None:
        return None
    return channel_mask.bool().repeat_interleave(n_tokens // channel_mask.shape[1], dim=1)


def pool_tokens(tokens: torch.Tensor, valid: torch.Tensor | None) -> torch.Tensor:
    """Mean of the tokens (B, N, D) where ``valid`` (B, N) (all of them without it): padded channels
    do not dilute the embedding the auxiliary heads read."""
    if valid is None:
        return tokens.mean(dim=1)
    weights = valid.unsqueeze(-1).to(tokens.dtype)
    return (tokens * weights).sum(1) / weights.sum(1).clamp_min(1)
