"""Shared helpers for the model tests: a fixed tiny batch and a short training loop."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch


def fixed_batch(batch: int = 4, n_chans: int = 129, n_times: int = 200, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(batch, n_chans, n_times, generator=generator)


def train(params: Iterable[torch.nn.Parameter], loss_fn: Callable[[], torch.Tensor], steps: int, lr: float):
    """Adam on ``loss_fn``; returns (first loss, last loss)."""
    optimiser = torch.optim.Adam(list(params), lr=lr)
    losses = []
    for _ in range(steps):
        optimiser.zero_grad()
        loss = loss_fn()
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    return losses[0], losses[-1]
