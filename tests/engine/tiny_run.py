"""A tiny real training run for the engine tests: importable, and runnable as a script (plain or torchrun).

As a script it trains ``TinyNet`` on a fixed synthetic regression set and leaves ``last.pt`` in ``--out``;
``--kill-at-step`` SIGKILLs the process mid-epoch (a crash), ``--resume`` continues from ``last.pt``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler, TensorDataset

from eegphase.engine.distributed import cleanup_distributed, init_distributed
from eegphase.engine.loop import Trainer, TrainerConfig
from eegphase.engine.optim import OptimizerConfig, ScheduleConfig
from eegphase.engine.seeding import make_generator, seed_everything, seed_worker


class TinyNet(nn.Module):
    """Embedding, two residual blocks, a head: enough structure for layer decay, dropout and EMA."""

    def __init__(self, in_dim: int = 8, dim: int = 16, depth: int = 2, dropout: float = 0.0):
        super().__init__()
        self.embed = nn.Linear(in_dim, dim)
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Linear(dim, dim), nn.GELU(), nn.Dropout(dropout)) for _ in range(depth)
        )
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.embed(x)
        for block in self.blocks:
            h = h + block(h)
        return self.head(self.norm(h)).squeeze(-1)


def make_dataset(n: int = 48, in_dim: int = 8) -> TensorDataset:
    """A fixed regression problem (its own generator, so it never depends on the global seed)."""
    gen = torch.Generator().manual_seed(1234)
    x = torch.randn(n, in_dim, generator=gen)
    y = x @ torch.randn(in_dim, generator=gen) + 0.1 * torch.randn(n, generator=gen)
    return TensorDataset(x, y)


def mse_step(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]):
    """The phase-style step_fn: scalar loss plus a term to log."""
    x, y = batch
    pred = model(x)
    loss = nn.functional.mse_loss(pred.float(), y)
    return loss, {"mse": loss.detach()}


def make_config(out: Path | None, **overrides) -> TrainerConfig:
    """A small fp32 configuration exercising warmup+cosine, AdamW, accumulation and clipping."""
    base = dict(
        precision="fp32",
        compile=False,
        grad_accum_steps=2,
        grad_clip_norm=1.0,
        ema_decay=None,
        log_every=2,
        checkpoint_dir=str(out) if out is not None else None,
        progress=False,
        optimizer=OptimizerConfig(lr=1e-2, weight_decay=0.05),
        schedule=ScheduleConfig(warmup_epochs=0.5, warmup_lr_init=1e-4, min_lr=1e-4),
    )
    base.update(overrides)
    return TrainerConfig(**base)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--global-batch", type=int, default=8)
    parser.add_argument("--accum", type=int, default=1)
    parser.add_argument("--dropout", type=float, default=0.0)
    parser.add_argument("--loader", choices=["distributed", "random"], default="distributed")
    parser.add_argument("--kill-at-step", type=int, default=None)
    parser.add_argument("--resume", action="store_true")
    args = parser.parse_args(argv)

    info = init_distributed("gloo")
    seed_everything(7 + info.rank)
    torch.manual_seed(7)  # same initial weights on every rank (DDP would broadcast rank 0's anyway)
    model = TinyNet(dropout=args.dropout)
    dataset = make_dataset()
    per_rank = args.global_batch // info.world_size
    if args.loader == "distributed":
        sampler = DistributedSampler(dataset, info.world_size, info.rank, shuffle=True, seed=3)
        loader = DataLoader(dataset, batch_size=per_rank, sampler=sampler)
    else:
        loader = DataLoader(
            dataset,
            batch_size=per_rank,
            shuffle=True,
            generator=make_generator(3),
            worker_init_fn=seed_worker,
        )
    args.out.mkdir(parents=True, exist_ok=True)
    log_path = args.out / f"log-rank{info.rank}.jsonl"

    def on_log(metrics: dict, step: int) -> None:
        with open(log_path, "a") as handle:
            handle.write(json.dumps({"step": step, **metrics}) + "\n")

    trainer: Trainer | None = None

    def step_fn(model, batch):
        if args.kill_at_step is not None and trainer.step == args.kill_at_step:
            os.kill(os.getpid(), signal.SIGKILL)
        return mse_step(model, batch)

    config = make_config(args.out, grad_accum_steps=args.accum)
    trainer = Trainer(model, step_fn, config, on_log=on_log, device="cpu")
    resume = trainer.last_checkpoint if args.resume else None
    trainer.fit(loader, val_loader=None, epochs=args.epochs, resume_from=resume)
    cleanup_distributed()


if __name__ == "__main__":
    main()
