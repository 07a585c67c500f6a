"""The one training loop every phase uses: ``Trainer(model, step_fn, config).fit(train, val, epochs)``.

A phase supplies ``step_fn(model, batch) -> (loss, terms)`` where ``loss`` is the scalar to backpropagate
(or a dict of loss terms that are summed) and ``terms`` a dict of scalar tensors/floats to log. The engine
owns precision, compile, DDP, accumulation, clipping, EMA, the schedule, checkpoints and early stopping.
Per-step work stays on the device: losses are only read back (``.item()``-style syncs) every ``log_every``
updates, which is also where NaN/inf losses are caught (naming the exact step and term).
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from timm.utils import ModelEmaV3
from torch import nn

from eegphase.engine.checkpoint import load_checkpoint, require_keys, save_checkpoint
from eegphase.engine.distributed import (
    all_gather_objects,
    all_reduce_sum,
    barrier,
    default_device,
    dist_info,
    wrap_ddp,
)
from eegphase.engine.errors import NonFiniteLossError
from eegphase.engine.optim import OptimizerConfig, ScheduleConfig, build_optimizer, build_scheduler
from eegphase.engine.precision import make_precision
from eegphase.engine.progress import ProgressBar, progress_enabled
from eegphase.engine.seeding import capture_rng_state, restore_rng_state

StepOutput = torch.Tensor | tuple[torch.Tensor | Mapping[str, torch.Tensor], Mapping[str, Any]]
StepFn = Callable[[nn.Module, Any], StepOutput]
EvalFn = Callable[[nn.Module, Any], Mapping[str, Any]]
LogFn = Callable[[dict[str, float], int], None]

log = logging.getLogger(__name__)
CHECKPOINT_FORMAT = "eegphase.engine/1"
_REQUIRED_KEYS = ("format", "model", "optimizer", "scheduler", "scaler", "epoch", "step", "rng")


@dataclass(kw_only=True)
class TrainerConfig:
    """Everything the loop decides; a phase fills it from its ``trainer`` config (``phases.common``).

    The first six fields are the keys of ``conf/trainer/default.yaml`` and have no default here: the YAML is
    their one source. The rest are what each phase decides itself (or engine internals).
    """

    precision: str  # auto|bf16|fp16|fp32
    compile: bool
    grad_accum_steps: int
    grad_clip_norm: float | None  # None: no clipping
    ema_decay: float | None  # None: no EMA; else timm ModelEmaV3 decay, evaluated as "val_ema/*"
    log_every: int  # optimizer updates between on_log calls (and NaN checks)
    compile_backend: str = "inductor"
    compile_mode: str | None = None
    ddp_find_unused_parameters: bool = False  # for models whose heads are not all used in every step
    monitor: str | None = None  # e.g. "val/loss"; None: no best checkpoint, no early stopping
    monitor_mode: str = "min"  # min|max
    patience: int | None = None  # epochs without improvement before stopping
    min_delta: float = 0.0
    checkpoint_dir: str | None = None  # None: no checkpoints written
    progress: bool | None = None  # None: a bar on rank 0 when stderr is a TTY
    optimizer: OptimizerConfig = field(default_factory=OptimizerConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)

    def __post_init__(self) -> None:
        if self.grad_accum_steps < 1:
            raise ValueError(f"grad_accum_steps must be >= 1, got {self.grad_accum_steps}")
        if self.monitor_mode not in ("min", "max"):
            raise ValueError(f"monitor_mode must be 'min' or 'max', got {self.monitor_mode!r}")
        if self.log_every < 1:
            raise ValueError(f"log_every must be >= 1, got {self.log_every}")
        if self.patience is not None and self.monitor is None:
            raise ValueError("patience is set but monitor is None: early stopping needs a metric to watch")


@dataclass
class FitResult:
    """What ``fit`` did: epochs completed, updates, the best monitored value and the per-epoch metrics."""

    epochs_completed: int
    steps: int
    best_metric: float | None
    best_epoch: int | None
    stopped_early: bool
    history: list[dict[str, float]]


def move_to_device(batch: Any, device: torch.device) -> Any:
    """Move tensors (also inside dicts, lists, tuples, namedtuples, or objects with ``.to``) to ``device``."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return type(batch)({key: move_to_device(value, device) for key, value in batch.items()})
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):
        return type(batch)(*(move_to_device(value, device) for value in batch))
    if isinstance(batch, list | tuple):
        return type(batch)(move_to_device(value, device) for value in batch)
    if hasattr(batch, "to"):
        return batch.to(device)
    return batch


def batch_size_of(batch: Any) -> int:
    """Leading dimension of the first tensor found in ``batch`` (for samples/s and eval averaging)."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.ndim else 1
    values = batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, Sequence) else ()
    for value in values:
        with contextlib.suppress(TypeError):
            return batch_size_of(value)
    raise TypeError(f"cannot find a tensor in a batch of type {type(batch).__name__}; pass batch_size_fn")


def split_step_output(output: StepOutput) -> tuple[torch.Tensor, dict[str, Any]]:
    """Normalise what a step_fn returns into (scalar loss, terms); a dict of losses is summed."""
    loss, terms = (output, {}) if isinstance(output, torch.Tensor) else output
    terms = dict(terms)
    if isinstance(loss, Mapping):
        if not loss:
            raise ValueError("step_fn returned an empty dict of loss terms")
        terms = {**{name: value.detach() for name, value in loss.items()}, **terms}
        loss = sum(loss.values())
    if not isinstance(loss, torch.Tensor) or loss.ndim != 0:
        raise TypeError(
            f"step_fn must return a scalar loss tensor (or a dict of them), got {type(loss).__name__} "
            f"with shape {getattr(loss, 'shape', None)}"
        )
    return loss, terms


class _StepWindow:
    """Detached per-step losses since the last read-back: cheap to append, checked and averaged together."""

    def __init__(self) -> None:
        self.entries: list[tuple[int, int, torch.Tensor, dict[str, Any]]] = []

    def add(self, step: int, batch_index: int, loss: torch.Tensor, terms: dict[str, Any]) -> None:
        self.entries.append((step, batch_index, loss.detach(), {k: _detach(v) for k, v in terms.items()}))

    def first_non_finite(self) -> tuple[int, int, str, float] | None:
        """(step, batch index, term name, value) of the first non-finite loss, or None."""
        if not self.entries:
            return None
        losses = torch.stack([loss.float() for _, _, loss, _ in self.entries])
        bad = (~torch.isfinite(losses)).nonzero()
        if len(bad) == 0:
            return None
        step, batch_index, loss, terms = self.entries[int(bad[0])]
        for name, value in terms.items():
            if not math.isfinite(float(value)):
                return step, batch_index, name, float(value)
        return step, batch_index, "loss", float(loss)

    def sums(self) -> tuple[list[str], torch.Tensor]:
        """Names and summed values of loss and every term (one tensor, one device sync later)."""
        names = ["loss", *self.entries[0][3].keys()]
        rows = [
            torch.stack(
                [
                    loss.float(),
                    *(torch.as_tensor(terms[n], dtype=torch.float32, device=loss.device) for n in names[1:]),
                ]
            )
            for _, _, loss, terms in self.entries
        ]
        return names, torch.stack(rows).sum(0)

    def clear(self) -> None:
        self.entries.clear()


def _detach(value: Any) -> Any:
    return value.detach() if isinstance(value, torch.Tensor) else value


class Trainer:
    """Owns the model's training: optimizer, schedule, precision, DDP, EMA, checkpoints, early stopping.

    ``model`` is kept unwrapped and uncompiled in ``self.model`` (saved state dicts come from it);
    ``self.train_model`` is the compiled and/or DDP-wrapped view that ``step_fn`` receives.
    """

    def __init__(
        self,
        model: nn.Module,
        step_fn: StepFn,
        config: TrainerConfig,
        *,
        eval_fn: EvalFn | None = None,
        on_log: LogFn | None = None,
        on_epoch_end: Callable[[Trainer, dict[str, float]], None] | None = None,
        device: torch.device | str | None = None,
        batch_size_fn: Callable[[Any], int] = batch_size_of,
    ):
        self.config = cfg = config
        self.dist = dist_info()
        self.device = torch.device(device) if device is not None else default_device(self.dist)
        self.model = model.to(self.device)
        self.step_fn, self.eval_fn = step_fn, eval_fn
        self.on_log, self.on_epoch_end = on_log, on_epoch_end
        self.batch_size_fn = batch_size_fn
        self.precision = make_precision(cfg.precision, self.device)
        self.scaler = self.precision.make_scaler()
        self.optimizer = build_optimizer(self.model, cfg.optimizer)
        self.scheduler = None
        self.ema = ModelEmaV3(self.model, decay=cfg.ema_decay) if cfg.ema_decay else None
        compiled = (
            torch.compile(self.model, backend=cfg.compile_backend, mode=cfg.compile_mode)
            if cfg.compile
            else self.model
        )
        self.eval_model = compiled  # never DDP: ranks may hold different numbers of val batches
        self.train_model = wrap_ddp(compiled, self.device, cfg.ddp_find_unused_parameters)
        self.epoch = 0  # epochs completed
        self.step = 0  # optimizer updates completed
        self.best_metric: float | None = None
        self.best_epoch: int | None = None
        self.epochs_since_best = 0
        self.should_stop = False  # set by early stopping or by a callback (request_stop)
        self.history: list[dict[str, float]] = []

    # ------------------------------------------------------------------ public API
    @property
    def checkpoint_dir(self) -> Path | None:
        return Path(self.config.checkpoint_dir) if self.config.checkpoint_dir else None

    @property
    def last_checkpoint(self) -> Path | None:
        return self.checkpoint_dir / "last.pt" if self.checkpoint_dir else None

    @property
    def best_checkpoint(self) -> Path | None:
        return self.checkpoint_dir / "best.pt" if self.checkpoint_dir else None

    def request_stop(self) -> None:
        """Finish after the current epoch (checkpoints of that epoch are still written)."""
        self.should_stop = True

    def fit(
        self,
        train_loader: Any,
        val_loader: Any | None = None,
        epochs: int = 1,
        resume_from: str | Path | None = None,
    ) -> FitResult:
        """Train until ``epochs`` epochs are completed (counting those of a resumed checkpoint) or stopped."""
        updates_per_epoch = math.ceil(len(train_loader) / self.config.grad_accum_steps)
        self.scheduler = build_scheduler(self.optimizer, self.config.schedule, updates_per_epoch, epochs)
        self._train_loader = train_loader
        if resume_from is not None:
            self.load_state(resume_from, train_loader)
        stopped_early = False
        while self.epoch < epochs and not self.should_stop:
            _set_sampler_epoch(train_loader, self.epoch)
            metrics = self.train_one_epoch(train_loader)
            if val_loader is not None:
                _set_sampler_epoch(val_loader, self.epoch)
                metrics.update(self.evaluate(val_loader))
            self.epoch += 1
            metrics["epoch"] = float(self.epoch)
            improved = self._track_best(metrics)
            patience = self.config.patience
            stopped_early = patience is not None and self.epochs_since_best >= patience
            self.should_stop = self.should_stop or stopped_early
            self.history.append(metrics)
            self._save_checkpoints(improved)
            self._log(metrics)
            if self.on_epoch_end is not None:
                self.on_epoch_end(self, metrics)
        return FitResult(
            self.epoch, self.step, self.best_metric, self.best_epoch, stopped_early, self.history
        )

    def train_one_epoch(self, loader: Any) -> dict[str, float]:
        """One pass over ``loader`` with gradient accumulation; returns the ``train_epoch/*`` means."""
        cfg = self.config
        model = self.train_model
        model.train()
        num_batches = len(loader)
        accum = cfg.grad_accum_steps
        window, epoch_sums, epoch_count, grad_norm = _StepWindow(), {}, 0, None
        show_bar = progress_enabled(self.dist.is_main, cfg.progress)
        bar = ProgressBar(num_batches, f"epoch {self.epoch}", show_bar)
        samples, started = 0, time.perf_counter()
        self.optimizer.zero_grad(set_to_none=True)
        for index, batch in enumerate(loader):
            batch = move_to_device(batch, self.device)
            group_start = index - index % accum
            group_size = min(accum, num_batches - group_start)
            is_update = index + 1 == group_start + group_size
            sync = contextlib.nullcontext() if is_update or not hasattr(model, "no_sync") else model.no_sync()
            with sync:
                with self.precision.autocast():
                    loss, terms = split_step_output(self.step_fn(model, batch))
                self.scaler.scale(loss / group_size).backward()
            window.add(self.step, index, loss, terms)
            if is_update:
                grad_norm = self._optimizer_step()
            batch_size = self.batch_size_fn(batch)
            samples += batch_size
            bar.update(1, batch_size)
            if is_update and (self.step % cfg.log_every == 0 or index + 1 == num_batches):
                elapsed = time.perf_counter() - started
                names, sums = self._read_window(window)
                count = len(window.entries)
                for name, value in zip(names, sums, strict=True):
                    epoch_sums[name] = epoch_sums.get(name, 0.0) + value
                epoch_count += count
                logged = {f"train/{name}": value / count for name, value in zip(names, sums, strict=True)}
                logged["lr"] = max(group["lr"] for group in self.optimizer.param_groups)
                if grad_norm is not None:
                    logged["train/grad_norm"] = float(grad_norm)
                logged["train/samples_per_s"] = samples * self.dist.world_size / max(elapsed, 1e-9)
                self._log(logged)
                window.clear()
                samples, started = 0, time.perf_counter()
        bar.close()
        # A separate prefix: "train/*" at the epoch's last step already holds the last window's means.
        return {f"train_epoch/{name}": value / max(epoch_count, 1) for name, value in epoch_sums.items()}

    @torch.no_grad()
    def evaluate(self, loader: Any) -> dict[str, float]:
        """Batch-size-weighted means of ``eval_fn`` outputs over all ranks: ``val/*`` (and ``val_ema/*``)."""
        metrics = self._evaluate_model(self.eval_model, loader, "val")
        if self.ema is not None:
            metrics.update(self._evaluate_model(self.ema.module, loader, "val_ema"))
        return metrics

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """Everything an exact resume needs, as tensors and plain values (collective under DDP)."""
        loader = getattr(self, "_train_loader", None)
        data_order = {name: gen.get_state() for name, gen in _loader_generators(loader).items()}
        return {
            "format": CHECKPOINT_FORMAT,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict() if self.scheduler is not None else None,
            "scaler": self.scaler.state_dict(),
            "ema": None if self.ema is None else _ema_state(self.ema),
            "epoch": self.epoch,
            "step": self.step,
            "best_metric": self.best_metric,
            "best_epoch": self.best_epoch,
            "epochs_since_best": self.epochs_since_best,
            "should_stop": self.should_stop,
            "history": self.history,
            "rng": all_gather_objects(capture_rng_state()),  # one entry per rank
            "data_order": data_order,  # sampler/loader generators; epochs reseed samplers
            "world_size": self.dist.world_size,
            "config": asdict(self.config),
        }

    def load_state(self, path: str | Path, train_loader: Any | None = None) -> None:
        """Restore a checkpoint written by :meth:`state_dict` (the scheduler must exist: call via ``fit``)."""
        state = load_checkpoint(path, map_location="cpu")
        require_keys(state, _REQUIRED_KEYS, path)
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.scheduler is not None and state["scheduler"] is not None:
            self.scheduler.load_state_dict(state["scheduler"])
        self.scaler.load_state_dict(state["scaler"])
        if self.ema is not None and state.get("ema") is not None:
            _load_ema_state(self.ema, state["ema"])
        self.epoch, self.step = int(state["epoch"]), int(state["step"])
        self.best_metric, self.best_epoch = state.get("best_metric"), state.get("best_epoch")
        self.epochs_since_best = int(state.get("epochs_since_best", 0))
        self.should_stop = bool(state.get("should_stop", False))
        self.history = list(state.get("history", []))
        rng = state["rng"]
        restore_rng_state(rng[self.dist.rank] if len(rng) == self.dist.world_size else rng[0])
        if train_loader is not None:
            _restore_data_order(train_loader, state.get("data_order", {}))
        log.info(
            "resuming from checkpoint %s at epoch %d (%d epochs and %d optimizer updates done)",
            Path(path).resolve(),
            self.epoch,
            self.epoch,
            self.step,
        )

    # ------------------------------------------------------------------ internals
    def _optimizer_step(self) -> torch.Tensor | None:
        grad_norm = None
        if self.config.grad_clip_norm is not None:
            self.scaler.unscale_(self.optimizer)
            grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.config.grad_clip_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.scheduler.step_update(self.step)
        if self.ema is not None:
            self.ema.update(self.model, step=self.step)
        return grad_norm

    def _read_window(self, window: _StepWindow) -> tuple[list[str], list[float]]:
        """Check the window for NaN/inf (on every rank at once) and return its summed loss/terms."""
        names, sums = window.sums()
        bad = window.first_non_finite()
        flag = torch.tensor([1.0 if bad else 0.0], device=sums.device)
        packed = all_reduce_sum(torch.cat([flag, sums.nan_to_num(0.0, 0.0, 0.0)]))
        if bad is not None:
            step, batch_index, term, value = bad
            raise NonFiniteLossError(
                f"non-finite loss at step {step} (epoch {self.epoch}, batch {batch_index}): "
                f"term {term!r} = {value}"
            )
        if packed[0] > 0:
            raise NonFiniteLossError(f"another rank saw a non-finite loss at or before step {self.step}")
        world = self.dist.world_size
        return names, [value / world for value in packed[1:].tolist()]

    def _evaluate_model(self, model: nn.Module, loader: Any, prefix: str) -> dict[str, float]:
        was_training = model.training
        model.eval()
        sums: dict[str, torch.Tensor] = {}
        count = 0
        for batch in loader:
            batch = move_to_device(batch, self.device)
            n = self.batch_size_fn(batch)
            with self.precision.autocast():
                if self.eval_fn is not None:
                    outputs = dict(self.eval_fn(model, batch))
                else:
                    loss, terms = split_step_output(self.step_fn(model, batch))
                    outputs = {"loss": loss, **terms}
            for name, value in outputs.items():
                value = torch.as_tensor(value, dtype=torch.float32, device=self.device).detach() * n
                sums[name] = sums[name] + value if name in sums else value
            count += n
        model.train(was_training)
        names = sorted(sums)
        packed = all_reduce_sum(
            torch.stack([*(sums[name] for name in names), torch.tensor(float(count), device=self.device)])
        ).tolist()
        total = max(packed[-1], 1.0)
        return {f"{prefix}/{name}": value / total for name, value in zip(names, packed[:-1], strict=True)}

    def _track_best(self, metrics: dict[str, float]) -> bool:
        monitor = self.config.monitor
        if monitor is None:
            return False
        if monitor not in metrics:
            raise KeyError(f"monitor {monitor!r} is not among the epoch metrics {sorted(metrics)}")
        value = metrics[monitor]
        sign = 1.0 if self.config.monitor_mode == "min" else -1.0
        improved = self.best_metric is None or sign * (self.best_metric - value) > self.config.min_delta
        if improved:
            self.best_metric, self.best_epoch, self.epochs_since_best = value, self.epoch - 1, 0
        else:
            self.epochs_since_best += 1
        return improved

    def _save_checkpoints(self, improved: bool) -> None:
        if self.checkpoint_dir is None:
            return
        state = self.state_dict()  # every rank takes part (RNG gather); only rank 0 writes
        if self.dist.is_main:
            # best before last: a kill between the two must not leave a last.pt that counts an improvement
            # whose best.pt was never written (the resumed run would then never write one)
            if improved:
                save_checkpoint(state, self.best_checkpoint)
            save_checkpoint(state, self.last_checkpoint)
        barrier()

    def _log(self, metrics: dict[str, float]) -> None:
        if self.on_log is not None and self.dist.is_main:
            self.on_log(dict(metrics), self.step)


def _ema_rounding_generator(ema: ModelEmaV3) -> torch.Generator | None:
    """The generator of the EMA's bf16 stochastic rounding, which an exact resume restores: a private timm
    attribute (``ModelEmaV3._sr_generator``), so None where this timm has none (nothing to restore)."""
    generator = getattr(ema, "_sr_generator", None)
    return generator if isinstance(generator, torch.Generator) else None


def _ema_state(ema: ModelEmaV3) -> dict[str, Any]:
    generator = _ema_rounding_generator(ema)
    return {
        "module": ema.module.state_dict(),
        "sr_generator": None if generator is None else generator.get_state(),
    }


def _load_ema_state(ema: ModelEmaV3, state: Mapping[str, Any]) -> None:
    ema.module.load_state_dict(state["module"])
    generator, saved = _ema_rounding_generator(ema), state.get("sr_generator")
    if generator is not None and saved is not None:
        generator.set_state(saved)
    elif generator is not None or saved is not None:
        log.warning(
            "EMA stochastic-rounding state not restored (the checkpoint %s one, this timm %s one): bf16 EMA "
            "updates after the resume may differ from an uninterrupted run's",
            "has" if saved is not None else "lacks",
            "has" if generator is not None else "lacks",
        )


def _set_sampler_epoch(loader: Any, epoch: int) -> None:
    """DistributedSampler-style samplers (or batch samplers) derive their order from (seed, epoch); a dataset
    with ``set_epoch`` derives its per-epoch randomness (random crops) from it too."""
    for name in ("sampler", "batch_sampler", "dataset"):
        target = getattr(loader, name, None)
        if hasattr(target, "set_epoch"):
            target.set_epoch(epoch)


def _loader_generators(loader: Any) -> dict[str, torch.Generator]:
    """The generators that decide a DataLoader's shuffling and worker seeds (when the user gave them)."""
    generators = {}
    if isinstance(getattr(loader, "generator", None), torch.Generator):
        generators["loader"] = loader.generator
    sampler = getattr(loader, "sampler", None)
    if isinstance(getattr(sampler, "generator", None), torch.Generator):
        generators["sampler"] = sampler.generator
    return generators


def _restore_data_order(loader: Any, state: Mapping[str, torch.Tensor]) -> None:
    for name, generator in _loader_generators(loader).items():
        if name in state:
            generator.set_state(state[name])
