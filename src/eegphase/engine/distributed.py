"""torchrun / DistributedDataParallel helpers: read the launcher's env, init the group, wrap and unwrap the
model, reduce metrics."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import nn


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job; world_size 1 means a plain single-process run."""

    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def dist_info() -> DistInfo:
    """The current process group's view, or the torchrun env vars before it exists."""
    if dist.is_available() and dist.is_initialized():
        return DistInfo(dist.get_rank(), int(os.environ.get("LOCAL_RANK", 0)), dist.get_world_size())
    env = os.environ
    return DistInfo(int(env.get("RANK", 0)), int(env.get("LOCAL_RANK", 0)), int(env.get("WORLD_SIZE", 1)))


def init_distributed(backend: str | None = None) -> DistInfo:
    """Join the process group torchrun describes (WORLD_SIZE > 1); nccl on CUDA, gloo otherwise."""
    info = dist_info()
    if info.world_size > 1 and not dist.is_initialized():
        if backend is None:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(info.local_rank)
        dist.init_process_group(backend=backend)
    return dist_info()


def default_device(info: DistInfo | None = None) -> torch.device:
    """This rank's CUDA device when there is one, else the CPU."""
    info = info or dist_info()
    return torch.device("cuda", info.local_rank) if torch.cuda.is_available() else torch.device("cpu")


def cleanup_distributed() -> None:
    """Leave the process group, if any."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def wrap_ddp(model: nn.Module, device: torch.device, find_unused_parameters: bool = False) -> nn.Module:
    """DDP-wrap ``model`` (already compiled, if compiling) when a process group is running.

    DDP only syncs parameters that require grad when it is built: a phase that unfreezes an encoder
    mid-run under DDP needs ``find_unused_parameters`` and the encoder trainable at construction.
    """
    if not (dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1):
        return model
    device_ids = [device.index] if device.type == "cuda" else None
    return nn.parallel.DistributedDataParallel(
        model, device_ids=device_ids, find_unused_parameters=find_unused_parameters
    )


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum ``tensor`` over ranks in place (no-op without a group)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def all_gather_objects(obj: object) -> list[object]:
    """Every rank's ``obj`` (for small per-rank state such as RNG states); ``[obj]`` without a group."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        gathered: list[object] = [None] * dist.get_world_size()
        dist.all_gather_object(gathered, obj)
        return gathered
    return [obj]


def barrier() -> None:
    """Wait for every rank (no-op without a group)."""
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.barrier()


def broadcast_from_main(obj: object) -> object:
    """Rank 0's ``obj`` on every rank (pickled; for small decisions such as run ids); ``obj`` without a group.

    Every rank must call it at the same point; the value other ranks pass is ignored.
    """
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        box = [obj if dist.get_rank() == 0 else None]
        dist.broadcast_object_list(box, src=0)
        return box[0]
    return obj


def unwrap_model(model: nn.Module) -> nn.Module:
    """The plain module under any nesting of DDP (``.module``) and torch.compile (``._orig_mod``) wrappers:
    its attributes (an EMA update) and state-dict keys (no wrapper prefix) are the model's own."""
    while True:
        if isinstance(model, nn.parallel.DistributedDataParallel | nn.DataParallel):
            model = model.module
        elif isinstance(getattr(model, "_orig_mod", None), nn.Module):
            model = model._orig_mod
        else:
            return model


def resolve_device(name: str = "auto", info: DistInfo | None = None) -> torch.device:
    """``auto`` -> this rank's CUDA device or the CPU; a bare ``cuda`` -> this rank's GPU under torchrun."""
    info = info or dist_info()
    if name == "auto":
        return default_device(info)
    device = torch.device(name)
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", info.local_rank)
    return device


def init_from_submitit() -> DistInfo:
    """Inside a submitit job of several tasks (``hydra/launcher=slurm`` or ``local`` with ``tasks_per_node`` >
    1), join one process group of all its tasks: one DDP pipeline per job.

    Only jobs that submitit started count (``SUBMITIT_EXECUTOR`` is set), so a plain ``python`` inside an
    ``sbatch --ntasks=4`` allocation never waits for three processes that do not exist.
    """
    if (dist.is_available() and dist.is_initialized()) or not os.environ.get("SUBMITIT_EXECUTOR"):
        return dist_info()
    try:
        import submitit
        from submitit.helpers import TorchDistributedEnvironment

        if submitit.JobEnvironment().num_tasks <= 1:
            return dist_info()
    except (ImportError, RuntimeError):
        return dist_info()
    # keep every GPU visible: init_distributed picks cuda:<LOCAL_RANK>
    TorchDistributedEnvironment().export(set_cuda_visible_devices=False)
    return init_distributed()
