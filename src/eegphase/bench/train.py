"""``python -m eegphase.bench train``: what training costs here, each figure measured side by side in one run.

- ``loop_overhead``: samples/s of ``Trainer.fit`` over in-memory batches / samples/s of a hand-written
  forward-backward-AdamW-step loop over the same batches, model, batch size and precision. 1.0 means the
  engine is free; the target is >= 0.95.
- ``mfu``: LaBraM masked-modelling steps (the product's pretraining step) in FLOP/s, where the FLOPs of one
  forward+backward are counted by ``FlopCounterMode``, over the matmul peak of the same dtype measured with a
  large GEMM on the same machine, thread count and run. bf16 (autocast) and fp32, interleaved.
- ``compile_labram`` / ``compile_eegnex``: eager vs ``torch.compile`` steps/s of the LaBraM masked step and
  an EEGNeX regression step, and the compile time (first compiled step minus a steady compiled step).

Timed runs alternate between candidates (``interleaved``) and report medians, so load on a shared machine
hits all alike. Each measurement is one function returning flat ``{key: value}``; add new ones to
``MEASUREMENTS``.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial

import torch
import torch._inductor.config as inductor_config
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from eegphase.bench import interleaved, write_results
from eegphase.engine.loop import Trainer, TrainerConfig
from eegphase.engine.optim import OptimizerConfig
from eegphase.engine.precision import Precision, make_precision
from eegphase.models.eegnex import EEGNeX
from eegphase.models.predictor import encoder_from_config
from eegphase.phases.pretrain import MaskedPretrainModel

N_CHANS, N_TIMES = 129, 200
LossFn = Callable[[], torch.Tensor]


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

    config = TrainerConfig(  # the bare loop's settings: no compile, accumulation, clipping or EMA
        precision=precision.name,
        compile=False,
        grad_accum_steps=1,
        grad_clip_norm=None,
        ema_decay=None,
        log_every=50,
        progress=False,
        optimizer=OptimizerConfig(lr=1e-3),
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


# --- one training step on fixed in-memory data, timed as a whole -------------------------------------------


def masked_modelling_loss(
    size: str, batch_size: int, n_codes: int, device: torch.device
) -> tuple[nn.Module, LossFn]:
    """LaBraM's MEM pretraining forward+loss, as ``phases.pretrain`` runs it (symmetric masks, one stacked
    forward, code head on the masked rows only). Codes are random ints: the frozen tokenizer's encode is
    a separate, forward-only cost that this figure leaves out."""
    gen = torch.Generator().manual_seed(0)
    model = MaskedPretrainModel(encoder_from_config({"name": "labram", "size": size}), n_codes, False)
    model = model.to(device).train()
    n_tokens = N_CHANS * (N_TIMES // model.encoder.patch_size)
    x = torch.randn(batch_size, N_CHANS, N_TIMES, generator=gen).to(device)
    codes = torch.randint(0, n_codes, (batch_size, n_tokens), generator=gen).to(device)

    def loss() -> torch.Tensor:
        return model(x, codes, 0.5)[0].loss

    return model, loss


def eegnex_regression_loss(batch_size: int, device: torch.device) -> tuple[nn.Module, LossFn]:
    """The start kit's baseline step: EEGNeX on (B, 129, 200) windows, MSE on one target."""
    gen = torch.Generator().manual_seed(0)
    model = make_model("eegnex").to(device).train()
    x = torch.randn(batch_size, N_CHANS, N_TIMES, generator=gen).to(device)
    y = torch.randn(batch_size, generator=gen).to(device)
    return model, lambda: nn.functional.mse_loss(model(x).squeeze(-1).float(), y)


def train_step(
    loss_fn: LossFn, optimizer: torch.optim.Optimizer, autocast: Callable[[], AbstractContextManager]
) -> None:
    """Forward under ``autocast``, backward, AdamW step: what one iteration of the engine costs."""
    with autocast():
        loss = loss_fn()
    loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def step_seconds(device: torch.device, step: Callable[[], None]) -> float:
    """Wall time of ``step``, with queued device work finished on both sides."""
    _sync(device)
    start = time.perf_counter()
    step()
    _sync(device)
    return time.perf_counter() - start


def counted_flops(step: Callable[[], None]) -> int:
    """FLOPs of ``step`` (matmuls, attention, convs: the forward and backward), as ``FlopCounterMode``
    counts them. The step runs for real, so it doubles as a warm-up (optimizer state included)."""
    counter = FlopCounterMode(display=False)
    with counter:
        step()
    return counter.get_total_flops()


def matmul_flops_per_s(size: int, dtype: torch.dtype, device: torch.device) -> Callable[[], float]:
    """A timer for one ``size``-cubed GEMM in ``dtype``: this machine's practical matmul peak."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(device=device, dtype=dtype)
    b = torch.randn(size, size, generator=gen).to(device=device, dtype=dtype)
    return lambda: 2 * size**3 / step_seconds(device, lambda: torch.mm(a, b))


def _flops_per_s(flops: int, device: torch.device, step: Callable[[], None]) -> float:
    return flops / step_seconds(device, step)


def measure_mfu(args: argparse.Namespace) -> dict[str, float | str | int]:
    """LaBraM MEM step FLOP/s over the GEMM peak of the same dtype, bf16 and fp32, interleaved."""
    device = torch.device(args.device)
    model, loss_fn = masked_modelling_loss(args.labram_size, args.labram_batch_size, args.n_codes, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    precisions = {name: Precision(name, device.type) for name in ("bf16", "fp32")}
    steps = {name: partial(train_step, loss_fn, optimizer, p.autocast) for name, p in precisions.items()}
    # The counted bf16 step is the warm-up (optimizer state, kernels); a 64-batch step takes tens of
    # seconds on a small CPU, so fp32 gets no separate one: the median of the timed steps absorbs it.
    flops = counted_flops(steps["bf16"])  # the same count in either dtype
    candidates: dict[str, Callable[[], float]] = {}
    for name, precision in precisions.items():
        candidates[f"peak_{name}"] = matmul_flops_per_s(args.gemm_size, precision.dtype, device)
        candidates[f"peak_{name}"]()  # warm-up
        candidates[f"step_{name}"] = partial(_flops_per_s, flops, device, steps[name])
    rates = interleaved(candidates, repeats=args.timed_steps)
    prefix = f"labram_{args.labram_size}"
    results: dict[str, float | str | int] = {
        f"{prefix}_gflop_per_step": flops / 1e9,
        "mfu_batch_size": args.labram_batch_size,
        "mfu_gemm_size": args.gemm_size,
        "mfu_threads": torch.get_num_threads(),
        "mfu_device": str(device),
    }
    for name in precisions:
        results[f"{prefix}_mfu_{name}"] = rates[f"step_{name}"] / rates[f"peak_{name}"]
        results[f"{prefix}_tflops_{name}"] = rates[f"step_{name}"] / 1e12
        results[f"{prefix}_seconds_per_step_{name}"] = flops / rates[f"step_{name}"]
        results[f"matmul_peak_tflops_{name}"] = rates[f"peak_{name}"] / 1e12
    return results


def compare_compiled(
    key: str, model: nn.Module, loss_fn: LossFn, precision: Precision, args: argparse.Namespace
) -> dict[str, float | str]:
    """Eager vs compiled steps/s of one loss (same model and optimizer), and the compile's cost.

    Compile time = the first compiled step minus the median steady compiled step. Inductor's on-disk
    caches are off for that first step, so the figure is a cold compile, not a cache hit."""
    device = torch.device(args.device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
    torch._dynamo.reset()
    compiled_fn = torch.compile(loss_fn, backend=args.compile_backend)

    def eager() -> float:
        return 1 / step_seconds(device, lambda: train_step(loss_fn, optimizer, precision.autocast))

    def compiled() -> float:
        return 1 / step_seconds(device, lambda: train_step(compiled_fn, optimizer, precision.autocast))

    eager()  # warm-up
    with inductor_config.patch(force_disable_caches=True):
        first_compiled_seconds = 1 / compiled()
    rates = interleaved({"eager": eager, "compiled": compiled}, repeats=args.timed_steps)
    torch._dynamo.reset()
    return {
        f"compile_speedup_{key}": rates["compiled"] / rates["eager"],
        f"compile_seconds_{key}": first_compiled_seconds - 1 / rates["compiled"],
        f"{key}_eager_steps_per_s": rates["eager"],
        f"{key}_compiled_steps_per_s": rates["compiled"],
        f"compile_precision_{key}": precision.name,
        f"compile_backend_{key}": args.compile_backend,
    }


def measure_compile_labram(args: argparse.Namespace) -> dict[str, float | str | int]:
    """torch.compile on the LaBraM masked-modelling step."""
    device = torch.device(args.device)
    model, loss_fn = masked_modelling_loss(
        args.labram_size, args.compile_labram_batch_size, args.n_codes, device
    )
    results = compare_compiled("labram", model, loss_fn, make_precision(args.precision, device), args)
    return {**results, "compile_batch_size_labram": args.compile_labram_batch_size}


def measure_compile_eegnex(args: argparse.Namespace) -> dict[str, float | str | int]:
    """torch.compile on the EEGNeX regression step."""
    device = torch.device(args.device)
    model, loss_fn = eegnex_regression_loss(args.compile_eegnex_batch_size, device)
    results = compare_compiled("eegnex", model, loss_fn, make_precision(args.precision, device), args)
    return {**results, "compile_batch_size_eegnex": args.compile_eegnex_batch_size}


MEASUREMENTS: dict[str, Callable[[argparse.Namespace], dict]] = {
    "loop_overhead": measure_loop_overhead,
    "mfu": measure_mfu,
    "compile_labram": measure_compile_labram,
    "compile_eegnex": measure_compile_eegnex,
}


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m eegphase.bench train",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    cuda = torch.cuda.is_available()
    parser.add_argument("--device", default="cuda" if cuda else "cpu")
    parser.add_argument("--only", nargs="*", choices=list(MEASUREMENTS), default=list(MEASUREMENTS))
    parser.add_argument("--out-dir", default=".", help="folder for bench-train.json")
    parser.add_argument(
        "--precision", default="auto", choices=["auto", "bf16", "fp16", "fp32"], help="loop and compile"
    )
    loop = parser.add_argument_group("loop_overhead")
    loop.add_argument("--model", default="eegnex", choices=["eegnex", "mlp"])
    # EEGNeX takes seconds per batch of 64 on a small CPU: smaller defaults there keep the bench short.
    loop.add_argument("--batch-size", type=int, default=64 if cuda else 16)
    loop.add_argument("--steps", type=int, default=50 if cuda else 4, help="optimizer steps per timed run")
    loop.add_argument("--repeats", type=int, default=5 if cuda else 3, help="interleaved repeats (medians)")
    heavy = parser.add_argument_group("mfu and compile")
    heavy.add_argument("--labram-size", default="base", help="LaBraM preset (tiny for a quick check)")
    heavy.add_argument("--labram-batch-size", type=int, default=64, help="MFU batch")
    heavy.add_argument("--n-codes", type=int, default=8192, help="tokenizer codebook size (head width)")
    heavy.add_argument("--gemm-size", type=int, default=8192 if cuda else 4096, help="peak GEMM n=m=k")
    # Whole steps take seconds to tens of seconds on a 2-core CPU: few timed steps, medians.
    heavy.add_argument("--timed-steps", type=int, default=20 if cuda else 3, help="interleaved repeats")
    heavy.add_argument("--compile-labram-batch-size", type=int, default=64 if cuda else 16)
    heavy.add_argument("--compile-eegnex-batch-size", type=int, default=128)
    heavy.add_argument(
        "--compile-backend", default="inductor", help="torch.compile backend (eager: a fast dry run)"
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> dict:
    """Run the chosen measurements, print a table and write ``bench-train.json``."""
    args = _parse(argv)
    results: dict = {}
    for name in args.only:
        start = time.perf_counter()
        results.update(MEASUREMENTS[name](args))
        results[f"bench_seconds_{name}"] = time.perf_counter() - start
    width = max(len(key) for key in results)
    for key, value in results.items():
        shown = f"{value:.4g}" if isinstance(value, float) else str(value)
        print(f"{key:<{width}}  {shown}")
    path = write_results("train", results, args.out_dir)
    print(f"wrote {path}")
    return results
