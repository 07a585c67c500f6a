"""``python -m eegphase.bench train``: what the training engine costs on top of a bare loop.

loop_overhead_ratio = samples/s of ``Trainer.fit`` over in-memory batches / samples/s of a hand-written
forward-backward-AdamW-step loop over the same batches, same model, batch size and precision, measured
side by side (interleaved repeats, medians). 1.0 means the engine is free; the target is >= 0.95.

Each measurement is one function returning flat ``{key: value}``; add new ones to ``MEASUREMENTS``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import torch
from torch import nn

from eegphase.bench import interleaved, write_results
from eegphase.engine.loop import Trainer, TrainerConfig
from eegphase.engine.optim import OptimizerConfig
from eegphase.engine.precision import make_precision
from eegphase.models.eegnex import EEGNeX

N_CHANS, N_TIMES = 129, 200


def make_model(name: str) -> nn.Module:
    """EEGNeX (the start kit's baseline) or a small MLP whose short steps expose per-step loop overhead."""
    if name == "eegnex":
        return EEGNeX(n_chans=N_CHANS, n_times=N_TIMES, n_outputs=1)
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(N_CHANS * N_TIMES, 256), nn.GELU(), nn.Linear(256, 1))
    raise ValueError(f"unknown bench model {name!r}; choose eegnex or mlp")


def _batches(args: argparse.Namespace, device: torch.device) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """EEG-shaped (B, 129, 200) windows with a regression target, already on the device."""
    gen = torch.Generator().manual_seed(0)
    return [
        (
            torch.randn(args.batch_size, N_CHANS, N_TIMES, generator=gen).to(device),
            torch.randn(args.batch_size, generator=gen).to(device),
        )
        for _ in range(args.steps)
    ]


def _regression_step(model: nn.Module, batch: tuple[torch.Tensor, torch.Tensor]):
    x, y = batch
    loss = nn.functional.mse_loss(model(x).squeeze(-1).float(), y)
    return loss, {}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_loop_overhead(args: argparse.Namespace) -> dict[str, float | str]:
    """Engine vs bare loop: samples/s of each and their ratio."""
    device = torch.device(args.device)
    precision = make_precision(args.precision, device)
    batches = _batches(args, device)
    samples = args.steps * args.batch_size
    model = make_model(args.model).to(device)

    def bare() -> float:
        # A fresh optimizer per run, as the engine builds one per Trainer: equal optimizer-state age.
        bare_optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
        model.train()
        _sync(device)
        start = time.perf_counter()
        for batch in batches:
            with precision.autocast():
                loss, _ = _regression_step(model, batch)
            loss.backward()
            bare_optimizer.step()
            bare_optimizer.zero_grad(set_to_none=True)
        _sync(device)
        return samples / (time.perf_counter() - start)

    config = TrainerConfig(
        precision=precision.name, progress=False, log_every=50, optimizer=OptimizerConfig(lr=1e-3)
    )

    def engine() -> float:
        trainer = Trainer(model, _regression_step, config, device=device)
        _sync(device)
        start = time.perf_counter()
        trainer.fit(batches, epochs=1)
        _sync(device)
        return samples / (time.perf_counter() - start)

    bare(), engine()  # warm-up: allocator, kernels, thread pools
    rates = interleaved({"bare": bare, "engine": engine}, repeats=args.repeats)
    return {
        "loop_overhead_ratio": rates["engine"] / rates["bare"],
        "loop_engine_samples_per_s": rates["engine"],
        "loop_bare_samples_per_s": rates["bare"],
        "loop_model": args.model,
        "loop_batch_size": args.batch_size,
        "loop_precision": precision.name,
        "loop_device": str(device),
    }


MEASUREMENTS: dict[str, Callable[[argparse.Namespace], dict]] = {"loop_overhead": measure_loop_overhead}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m eegphase.bench train", description=__doc__)
    cuda = torch.cuda.is_available()
    parser.add_argument("--device", default="cuda" if cuda else "cpu")
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp16", "fp32"])
    parser.add_argument("--model", default="eegnex", choices=["eegnex", "mlp"])
    # EEGNeX takes seconds per batch of 64 on a small CPU: smaller defaults there keep the bench short.
    parser.add_argument("--batch-size", type=int, default=64 if cuda else 16)
    parser.add_argument("--steps", type=int, default=50 if cuda else 4, help="optimizer steps per timed run")
    parser.add_argument("--repeats", type=int, default=5 if cuda else 3, help="interleaved repeats (medians)")
    parser.add_argument("--only", nargs="*", choices=sorted(MEASUREMENTS), default=sorted(MEASUREMENTS))
    parser.add_argument("--out-dir", default=".", help="folder for bench-train.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Run the chosen measurements, print a table and write ``bench-train.json``."""
    args = _parse(argv)
    results: dict = {}
    for name in args.only:
        results.update(MEASUREMENTS[name](args))
    width = max(len(key) for key in results)
    for key, value in results.items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")
    path = write_results("train", results, args.out_dir)
    print(f"wrote {path}")
    return results
