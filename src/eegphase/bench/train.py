"""``python -m eegphase.bench train``: what training costs here, each figure measured side by side in one run.

- ``loop_overhead``: samples/s of ``Trainer.fit`` / samples/s of the plain loop a careful user writes, both
  doing what a real run does: a DataLoader over a real (tiny, synthetic) preprocessed cache at the training
  default ``num_workers``, gradient clipping at the default norm, EMA when asked (``--ema-decay``), one
  checkpoint per epoch. 1.0 means the engine is free; the target is >= 0.95.
- ``mfu``: LaBraM masked-modelling steps (the product's pretraining step) in FLOP/s over the matmul peak of
  the same dtype (a large GEMM timed in the same run). FLOPs of one forward+backward are counted by
  ``FlopCounterMode`` plus attention, which it leaves out on CPU (the flash kernel has no formula): the
  analytic 4*B*H*N^2*Dh per forward (QK^T and AV), 8*B*H*N^2*Dh per backward. Beside it, the reference arm:
  a plain ``scaled_dot_product_attention`` transformer of the same width, depth, heads and token count with
  the same 8192-way head on the same rows; ``labram_vs_plain_transformer`` = LaBraM's MFU / the plain one's.
  LaBraM runs attention through ``models.transformer.attention`` (float32 on CPUs without AMX, where that
  kernel is the faster one); a third arm, the plain transformer calling that same routine, gives
  ``labram_vs_plain_transformer_same_attention``: what LaBraM's own layers (qk-norm, layer scale, patch
  embedding) cost, with the attention kernel's choice taken out.
  ``--profile``: where one bf16 LaBraM step spends its time (shares of the profiled CPU time).
- ``optimizer``: one AdamW step over LaBraM's parameters (and its code head), for-loop vs foreach vs fused.
- ``compile_labram`` / ``compile_eegnex``: eager vs ``torch.compile`` steps/s of the LaBraM masked step and
  an EEGNeX regression step, and the compile time (first compiled step minus a steady compiled step).

Timed runs alternate between candidates (``interleaved``) and report medians, so load on a shared machine
hits all alike. Every arm runs under the CPU allocator setting that ``eegphase.run`` applies (``--cpu-allocator``,
default ``keep``: ``engine/allocator.py``); ``mfu`` reports each arm's page faults per step beside its time.
Each measurement is one function returning flat ``{key: value}``; add new ones to
``MEASUREMENTS``.
"""

from __future__ import annotations

import argparse
import resource
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import fields
from functools import partial
from pathlib import Path

import torch
import torch._inductor.config as inductor_config
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import FlopCounterMode, sdpa_flop_count

from eegphase.bench import interleaved, write_results
from eegphase.engine.allocator import CPU_ALLOCATORS, configure_cpu_allocator
from eegphase.engine.loop import Trainer, TrainerConfig
from eegphase.engine.optim import OptimizerConfig
from eegphase.engine.precision import Precision, make_precision
from eegphase.models.braindecode import braindecode_model_class
from eegphase.models.predictor import encoder_from_config
from eegphase.models.transformer import attention
from eegphase.phases.pretrain_mem import MaskedPretrainModel

N_CHANS, N_TIMES = 129, 200
LossFn = Callable[[], torch.Tensor]


def make_model(name: str) -> nn.Module:
    """braindecode's EEGNeX (the start kit's baseline) or a small MLP whose short steps expose per-step loop
    overhead."""
    if name == "eegnex":
        return braindecode_model_class("EEGNeX")(n_chans=N_CHANS, n_times=N_TIMES, n_outputs=1)
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(N_CHANS * N_TIMES, 256), nn.GELU(), nn.Linear(256, 1))
    raise ValueError(f"unknown bench model {name!r}; choose eegnex or mlp")


def trainer_defaults() -> dict:
    """``conf/trainer/default.yaml``: the clipping norm, EMA decay, workers and log interval of a real run."""
    from omegaconf import OmegaConf

    from eegphase.config import CONF_DIR

    return OmegaConf.to_container(OmegaConf.load(Path(CONF_DIR) / "trainer" / "default.yaml"))


def tiny_cache(folder: Path, subjects: int, duration_scale: float) -> Path:
    """A real preprocessed cache (synthetic HBN .bdf files through ``prepare``), built once per folder."""
    from eegphase.data.prepare_cache import prepare
    from eegphase.data.synthetic import generate_hbn

    cache = folder / "cache"
    if not (folder / "hbn" / ".complete").exists():
        generate_hbn(folder / "hbn", releases=["R1"], subjects_per_release=subjects,
                     duration_scale=duration_scale, seed=0, progress=False)  # fmt: skip
    sources = {"sources": {"hbn": {"kind": "hbn", "root": str(folder / "hbn")}}, "modes": ["pretrain"]}
    prepare(sources, cache, modes=["pretrain"], progress=False)
    return cache


def _window_target(batch: dict) -> torch.Tensor:
    """A regression target every window has: its mean (the bench times the loop, not what it learns)."""
    return batch["x"].mean(dim=(1, 2))


def _regression_step(model: nn.Module, batch: dict):
    loss = nn.functional.mse_loss(model(batch["x"]).squeeze(-1).float(), _window_target(batch))
    return loss, {}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_loop_overhead(args: argparse.Namespace) -> dict[str, float | str]:
    """Engine vs the best plain loop, one epoch over the same cached windows each: samples/s and the ratio."""
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
    from torch.utils.data import DataLoader

    from eegphase.data.datasets import WindowDataset, load_windows
    from eegphase.engine.sampler import ShardedShuffleSampler

    device = torch.device(args.device)
    precision = make_precision(args.precision, device)
    defaults = trainer_defaults()  # clipping, EMA, workers, log interval, compile: as a real run
    clip = defaults["grad_clip_norm"]
    ema_decay = args.ema_decay if args.ema_decay is not None else defaults["ema_decay"]
    workers = defaults["num_workers"] if args.num_workers is None else args.num_workers
    work = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="eegphase-bench-train-"))
    cache = tiny_cache(work, args.subjects, args.duration_scale)
    dataset = WindowDataset(cache, load_windows(cache, "pretrain"))
    batch_size = min(args.batch_size, len(dataset))
    n_batches = min(args.steps, len(dataset) // batch_size)
    samples = n_batches * batch_size
    model = make_model(args.model).to(device)

    def plain_loader() -> DataLoader:  # what a careful user writes: shuffled, full batches, seeded
        sampler = torch.utils.data.RandomSampler(
            dataset, num_samples=samples, generator=torch.Generator().manual_seed(0)
        )
        return DataLoader(dataset, batch_size, sampler=sampler, num_workers=workers, drop_last=True)

    def bare() -> float:
        # A fresh optimizer (and EMA) per run, as the engine builds them per Trainer: equal state age.
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.05)
        ema = (
            None if ema_decay is None else AveragedModel(model, multi_avg_fn=get_ema_multi_avg_fn(ema_decay))
        )
        model.train()
        _sync(device)
        start = time.perf_counter()
        for batch in plain_loader():
            batch = {k: v.to(device, non_blocking=True) for k, v in batch.items() if torch.is_tensor(v)}
            with precision.autocast():
                loss, _ = _regression_step(model, batch)
            loss.backward()
            if clip is not None:
                torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if ema is not None:
                ema.update_parameters(model)
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict()}, work / "bare.pt")
        _sync(device)
        return samples / (time.perf_counter() - start)

    engine_keys = {f.name for f in fields(TrainerConfig)}
    settings = {k: v for k, v in defaults.items() if k in engine_keys}
    settings.update(precision=precision.name, ema_decay=ema_decay, progress=False)
    config = TrainerConfig(
        **settings, checkpoint_dir=str(work / "engine"), optimizer=OptimizerConfig(lr=1e-3)
    )

    def engine() -> float:
        # The training loader of a real run (phases.common.loader): sharded shuffle, capped batches.
        sampler = ShardedShuffleSampler(len(dataset), batch_size, seed=0, max_batches=n_batches)
        loader = DataLoader(dataset, batch_size, sampler=sampler, num_workers=workers)
        trainer = Trainer(model, _regression_step, config, device=device)
        _sync(device)
        start = time.perf_counter()
        trainer.fit(loader, epochs=1)
        _sync(device)
        return samples / (time.perf_counter() - start)

    bare(), engine()  # warm-up: allocator, kernels, thread pools, page cache
    rates = interleaved({"bare": bare, "engine": engine}, repeats=args.repeats)
    if not args.work_dir:
        shutil.rmtree(work, ignore_errors=True)
    return {
        "loop_overhead_ratio": rates["engine"] / rates["bare"],
        "loop_engine_samples_per_s": rates["engine"],
        "loop_bare_samples_per_s": rates["bare"],
        "loop_model": args.model,
        "loop_batch_size": batch_size,
        "loop_steps_per_epoch": n_batches,
        "loop_num_workers": workers,
        "loop_grad_clip_norm": clip,
        "loop_ema_decay": ema_decay,
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


class PlainBlock(nn.Module):
    """The textbook pre-norm block: LayerNorm, one qkv GEMM, ``scaled_dot_product_attention``, projection,
    LayerNorm, a 4x GELU MLP; no qk-norm, layer scale or masking. ``attend``: the attention routine
    (``F.scaled_dot_product_attention``, or LaBraM's ``models.transformer.attention`` for a like-for-like arm)."""

    def __init__(
        self, dim: int, heads: int, mlp_ratio: float = 4.0, attend: Callable = F.scaled_dot_product_attention
    ):
        super().__init__()
        self.heads, self.attend = heads, attend
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, int(dim * mlp_ratio)), nn.GELU(), nn.Linear(int(dim * mlp_ratio), dim)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        q, k, v = self.qkv(self.norm1(x)).view(b, n, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        a = self.attend(q, k, v)
        x = x + self.proj(a.transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm2(x))


class PlainTransformer(nn.Module):
    """The reference arm of ``mfu``: token embeddings in, blocks, a final norm, a code head on chosen rows."""

    def __init__(
        self,
        dim: int,
        depth: int,
        heads: int,
        n_codes: int,
        mlp_ratio: float = 4.0,
        attend: Callable = F.scaled_dot_product_attention,
    ):
        super().__init__()
        self.blocks = nn.ModuleList(PlainBlock(dim, heads, mlp_ratio, attend) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, n_codes)

    def forward(self, tokens: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            tokens = block(tokens)
        return self.head(self.norm(tokens).flatten(0, 1)[rows])


def plain_transformer_loss(
    size: str,
    batch_size: int,
    n_codes: int,
    device: torch.device,
    attend: Callable = F.scaled_dot_product_attention,
) -> tuple[nn.Module, LossFn]:
    """The plain transformer on LaBraM's MEM shapes: the stacked batch of both mask views (2 x batch), each
    sequence a cls token + 129 x 2 patch tokens, cross-entropy over ``n_codes`` on as many rows as LaBraM's
    head scores (the masked patch tokens: batch x 258)."""
    from eegphase.models.registry import LABRAM_SIZES

    preset = LABRAM_SIZES[size]
    dim, depth, heads = preset["embed_dim"], preset["depth"], preset["num_heads"]
    n_patches = N_CHANS * (N_TIMES // 100)
    gen = torch.Generator().manual_seed(0)
    model = PlainTransformer(dim, depth, heads, n_codes, attend=attend).to(device).train()
    tokens = torch.randn(2 * batch_size, 1 + n_patches, dim, generator=gen).to(device)
    patch_rows = (
        torch.arange(2 * batch_size)[:, None] * (1 + n_patches) + 1 + torch.arange(n_patches)
    ).flatten()
    rows = patch_rows[torch.randperm(len(patch_rows), generator=gen)[: batch_size * n_patches]].sort().values
    rows = rows.to(device)
    codes = torch.randint(0, n_codes, (len(rows),), generator=gen).to(device)

    def loss() -> torch.Tensor:
        return nn.functional.cross_entropy(model(tokens, rows).float(), codes)

    return model, loss


def _attention_forward_flops(query, key, value, *args, out_shape=None, **kwargs) -> int:
    return sdpa_flop_count(query, key, value)  # 2*B*H*Nq*Nk*Dh (QK^T) + 2*B*H*Nq*Nk*Dv (AV)


def _attention_backward_flops(grad_out, query, key, value, *args, out_shape=None, **kwargs) -> int:
    # Model FLOPs, as for every other op: the gradients of both GEMMs (twice the forward). The kernel also
    # recomputes QK^T, which torch's GPU formulas count; MFU leaves recomputation out.
    return 2 * sdpa_flop_count(query, key, value)


# FlopCounterMode has no formula for the CPU flash-attention kernels (it counts GPU flash/efficient/cudnn
# attention and the math path's bmm): the analytic count of the two attention GEMMs, from the real shapes.
ATTENTION_FLOPS = {
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu: _attention_forward_flops,
    torch.ops.aten._scaled_dot_product_flash_attention_for_cpu_backward: _attention_backward_flops,
    # the GPU kernels' backward formulas count the recomputed QK^T: the same model FLOPs on every device
    torch.ops.aten._scaled_dot_product_flash_attention_backward: _attention_backward_flops,
    torch.ops.aten._scaled_dot_product_efficient_attention_backward: _attention_backward_flops,
    torch.ops.aten._scaled_dot_product_cudnn_attention_backward: _attention_backward_flops,
}
ATTENTION_OPS = {
    "_scaled_dot_product_flash_attention_for_cpu",
    "_scaled_dot_product_flash_attention_for_cpu_backward",
    "_scaled_dot_product_flash_attention",
    "_scaled_dot_product_flash_attention_backward",
    "_scaled_dot_product_efficient_attention",
    "_scaled_dot_product_efficient_attention_backward",
    "_scaled_dot_product_cudnn_attention",
    "_scaled_dot_product_cudnn_attention_backward",
}


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


def counted_flops(step: Callable[[], None]) -> tuple[int, int]:
    """(all FLOPs, attention FLOPs) of ``step``'s forward and backward: matmuls and convs as
    ``FlopCounterMode`` counts them, attention included (``ATTENTION_FLOPS``). The step runs for real, so it
    doubles as a warm-up (optimizer state included)."""
    counter = FlopCounterMode(display=False, custom_mapping=ATTENTION_FLOPS)
    with counter:
        step()
    by_op = counter.get_flop_counts().get("Global", {})
    attention = sum(
        n for op, n in by_op.items() if getattr(op, "__name__", str(op)).split(".")[0] in ATTENTION_OPS
    )
    return counter.get_total_flops(), attention


def matmul_flops_per_s(size: int, dtype: torch.dtype, device: torch.device) -> Callable[[], float]:
    """A timer for one ``size``-cubed GEMM in ``dtype``: this machine's practical matmul peak."""
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(device=device, dtype=dtype)
    b = torch.randn(size, size, generator=gen).to(device=device, dtype=dtype)
    return lambda: 2 * size**3 / step_seconds(device, lambda: torch.mm(a, b))


def _flops_per_s(
    flops: int, device: torch.device, step: Callable[[], None], faults: list[int] | None = None
) -> float:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    rate = flops / step_seconds(device, step)
    if faults is not None:  # page faults of the step: memory the allocator gave back and took again
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    return rate


def measure_mfu(args: argparse.Namespace) -> dict[str, float | str | int]:
    """LaBraM MEM step and the plain transformer's step, FLOP/s over the GEMM peak of the same dtype, bf16 and
    fp32, all interleaved; their MFU ratio; optionally the profile of one bf16 LaBraM step."""
    device = torch.device(args.device)
    precisions = {name: Precision(name, device.type) for name in args.mfu_dtypes}
    arms = {
        "labram": masked_modelling_loss(args.labram_size, args.labram_batch_size, args.n_codes, device),
        "plain": plain_transformer_loss(args.labram_size, args.labram_batch_size, args.n_codes, device),
        "plain_same_attention": plain_transformer_loss(
            args.labram_size, args.labram_batch_size, args.n_codes, device, attend=attention
        ),
    }
    candidates: dict[str, Callable[[], float]] = {}
    faults: dict[str, list[int]] = {}
    flops: dict[str, tuple[int, int]] = {}
    steps: dict[str, dict[str, Callable[[], None]]] = {}
    for arm, (model, loss_fn) in arms.items():
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.05)
        steps[arm] = {
            name: partial(train_step, loss_fn, optimizer, p.autocast) for name, p in precisions.items()
        }
        # The counted step is the warm-up (optimizer state, kernels); a 64-batch step takes tens of seconds
        # on a small CPU, so other dtypes get no separate one: the median of the timed steps absorbs it.
        flops[arm] = counted_flops(steps[arm][next(iter(precisions))])  # the same count in every dtype
    for name, precision in precisions.items():
        candidates[f"peak_{name}"] = matmul_flops_per_s(args.gemm_size, precision.dtype, device)
        candidates[f"peak_{name}"]()  # warm-up
        for arm in arms:
            faults[f"{arm}_{name}"] = []
            candidates[f"{arm}_{name}"] = partial(
                _flops_per_s, flops[arm][0], device, steps[arm][name], faults[f"{arm}_{name}"]
            )
    rates = interleaved(candidates, repeats=args.timed_steps)
    labram = f"labram_{args.labram_size}"
    results: dict[str, float | str | int] = {
        "mfu_batch_size": args.labram_batch_size,
        "mfu_n_codes": args.n_codes,
        "mfu_gemm_size": args.gemm_size,
        "mfu_threads": torch.get_num_threads(),
        "mfu_device": str(device),
    }
    prefixes = {
        "labram": labram,
        "plain": "plain_transformer",
        "plain_same_attention": "plain_transformer_same_attention",
    }
    for arm, prefix in prefixes.items():
        total, attention_flops = flops[arm]
        results[f"{prefix}_gflop_per_step"] = total / 1e9
        results[f"{prefix}_attention_gflop_per_step"] = attention_flops / 1e9
        for name in precisions:
            rate = rates[f"{arm}_{name}"]
            results[f"{prefix}_mfu_{name}"] = rate / rates[f"peak_{name}"]
            results[f"{prefix}_tflops_{name}"] = rate / 1e12
            results[f"{prefix}_seconds_per_step_{name}"] = total / rate
            results[f"{prefix}_minor_faults_per_step_{name}"] = statistics.median(faults[f"{arm}_{name}"])
    for name in precisions:
        results[f"matmul_peak_tflops_{name}"] = rates[f"peak_{name}"] / 1e12
        for reference in ("plain_transformer", "plain_transformer_same_attention"):
            results[f"labram_vs_{reference}_{name}"] = (
                results[f"{labram}_mfu_{name}"] / results[f"{reference}_mfu_{name}"]
            )
    headline = "bf16" if "bf16" in precisions else next(iter(precisions))
    results["labram_vs_plain_transformer"] = results[f"labram_vs_plain_transformer_{headline}"]
    results["labram_vs_plain_transformer_same_attention"] = results[
        f"labram_vs_plain_transformer_same_attention_{headline}"
    ]
    if args.profile:
        results.update(profile_step(steps["labram"][headline], f"{labram}_{headline}"))
    return results


PROFILE_GROUPS = {  # profiler op name -> group; the rest is "other"
    "attention": ATTENTION_OPS | {"scaled_dot_product_attention"},
    "matmul": {"mm", "addmm", "bmm", "matmul", "linear", "baddbmm"},
    "copies": {"copy_", "_to_copy", "to", "contiguous", "clone", "cat", "index", "index_put_", "repeat"},
    "elementwise_norm_act": {
        "add",
        "add_",
        "mul",
        "mul_",
        "addcmul",
        "native_layer_norm",
        "native_layer_norm_backward",
        "gelu",
        "gelu_backward",
        "_log_softmax",
        "_log_softmax_backward_data",
        "div",
        "sub",
        "where",
    },  # fmt: skip
}


def profile_step(step: Callable[[], None], key: str) -> dict[str, float]:
    """Where one step spends its time: each group's share of the self CPU time of the profiled step, and the
    AdamW step's share (its whole time, children included). Printed as a top-12 table too. The profiler's
    per-op cost inflates parts made of many small ops (the for-loop AdamW): ``optimizer`` times it directly."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = prof.key_averages()
    ops = [e for e in events if e.key.startswith("aten::")]
    total = sum(e.self_cpu_time_total for e in ops) or 1.0
    shares = {group: 0.0 for group in PROFILE_GROUPS}
    for event in ops:
        name = event.key.removeprefix("aten::")
        group = next((g for g, names in PROFILE_GROUPS.items() if name in names), None)
        if group is not None:
            shares[group] += event.self_cpu_time_total / total
    optimizer = sum(e.cpu_time_total for e in events if e.key.startswith("Optimizer.step#"))
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
    results = {f"profile_{key}_share_{group}": share for group, share in shares.items()}
    results[f"profile_{key}_share_other"] = 1.0 - sum(shares.values())
    results[f"profile_{key}_share_adamw_step"] = optimizer / total
    results[f"profile_{key}_seconds"] = total / 1e6
    return results


def measure_optimizer(args: argparse.Namespace) -> dict[str, float | str]:
    """One AdamW step over LaBraM + its code head (the MEM model's parameters), with gradients set: the
    default for-loop implementation vs ``foreach`` vs ``fused``, interleaved."""
    device = torch.device(args.device)
    model, _ = masked_modelling_loss(args.labram_size, 1, args.n_codes, device)
    params = [p for p in model.parameters() if p.requires_grad]
    gen = torch.Generator().manual_seed(0)
    for p in params:
        p.grad = torch.randn(p.shape, generator=gen).to(device)
    variants = {"forloop": {"foreach": False}, "foreach": {"foreach": True}, "fused": {"fused": True}}
    optimizers = {
        name: torch.optim.AdamW(params, lr=1e-4, weight_decay=0.05, **kwargs)
        for name, kwargs in variants.items()
    }
    candidates = {
        name: partial(lambda o: 1 / step_seconds(device, o.step), o) for name, o in optimizers.items()
    }
    for run in candidates.values():
        run()  # warm-up: optimizer state
    rates = interleaved(candidates, repeats=args.timed_steps * 5)
    results: dict[str, float | str] = {"adamw_parameters": float(sum(p.numel() for p in params))}
    for name in variants:
        results[f"adamw_seconds_{name}"] = 1 / rates[name]
    results["adamw_fused_speedup"] = rates["fused"] / rates["forloop"]
    results["adamw_foreach_speedup"] = rates["foreach"] / rates["forloop"]
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
    "optimizer": measure_optimizer,
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
    parser.add_argument(
        "--cpu-allocator",
        default="keep",
        choices=list(CPU_ALLOCATORS),
        help="as the config's cpu_allocator (the run's default: keep), for every arm alike",
    )
    loop = parser.add_argument_group("loop_overhead")
    loop.add_argument("--model", default="eegnex", choices=["eegnex", "mlp"])
    # EEGNeX takes seconds per batch of 64 on a small CPU: smaller defaults there keep the bench short.
    loop.add_argument("--batch-size", type=int, default=64 if cuda else 16)
    loop.add_argument(
        "--steps", type=int, default=50 if cuda else 8, help="batches per timed epoch (at most)"
    )
    loop.add_argument("--ema-decay", type=float, default=None, help="EMA on (default: the trainer config's)")
    loop.add_argument("--num-workers", type=int, default=None, help="default: the trainer config's")
    loop.add_argument("--subjects", type=int, default=2, help="synthetic subjects in the cache")
    loop.add_argument("--duration-scale", type=float, default=0.1, help="synthetic recording length scale")
    loop.add_argument("--work-dir", default=None, help="keep the synthetic data and cache here (reused)")
    loop.add_argument("--repeats", type=int, default=5 if cuda else 3, help="interleaved repeats (medians)")
    heavy = parser.add_argument_group("mfu and compile")
    heavy.add_argument("--labram-size", default="base", help="LaBraM preset (tiny for a quick check)")
    heavy.add_argument("--labram-batch-size", type=int, default=64, help="MFU batch")
    heavy.add_argument("--n-codes", type=int, default=8192, help="tokenizer codebook size (head width)")
    heavy.add_argument("--mfu-dtypes", nargs="+", default=["bf16", "fp32"], choices=["bf16", "fp32", "fp16"])
    heavy.add_argument("--profile", action="store_true", help="profile one bf16 LaBraM step (mfu)")
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
    results: dict = {"cpu_allocator": args.cpu_allocator}
    configure_cpu_allocator(args.cpu_allocator)  # as eegphase.run does: every arm runs under it
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
