"""Phase fingerprints: what decides whether a finished phase can be reused instead of retrained.

A fingerprint hashes the phase's resolved config (with its effective seed), the encoder config, the settings
the phase depends on, its upstream phase's fingerprint (or the URI it starts from), the data cache's content
key, the code version (a hash of the package's source) and the number of torchrun ranks, so any change
that could change the result changes it.
"""

from __future__ import annotations

import hashlib
import json
from functools import cache
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

import eegphase
from eegphase.engine.distributed import dist_info

# The parts of the run config each phase depends on, beyond its own phases.<name> block (which holds its
# effective engine settings, phases.<name>.trainer: the global trainer's unless the phase overrides them).
DEPENDS_ON = {
    "pretrain": ("model", "aux_task", "input_scale"),
    "contrastive": ("model", "contrastive", "input_scale"),
    "finetune": ("model", "input_scale"),
}
# Keys of a shared group that one phase alone reads: the other phases' fingerprints leave them out, so a sweep
# over them (model.finetune_layer_decay=0.65,null) reuses the upstream phases instead of retraining them.
READ_BY_ONE_PHASE = {("model", "finetune_layer_decay"): "finetune", ("model", "pretrain_lr"): "pretrain"}


# Code that shapes what a phase computes; tracking, reports, export, benchmarks and the generator do not.
TRAINING_CODE = ("data", "models", "objectives", "engine", "phases")
NOT_TRAINING_CODE = ("data/synthetic",)


@cache
def code_version() -> str:
    """Hash of the package version and the source files that shape training (changes with any such edit)."""
    root = Path(eegphase.__file__).resolve().parent
    digest = hashlib.sha256(eegphase.__version__.encode())
    files = [p for folder in TRAINING_CODE for p in (root / folder).rglob("*.py")]
    files = [p for p in files if not any(str(p.relative_to(root)).startswith(x) for x in NOT_TRAINING_CODE)]
    for path in sorted(files):
        digest.update(str(path.relative_to(root)).encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _plain(value: Any) -> Any:
    return OmegaConf.to_container(value, resolve=True) if isinstance(value, DictConfig) else value


def _depends(cfg: DictConfig, phase: str) -> dict[str, Any]:
    depends = {key: _plain(cfg[key]) for key in DEPENDS_ON[phase]}
    for (group, key), reader in READ_BY_ONE_PHASE.items():
        if reader != phase and isinstance(depends.get(group), dict):
            depends[group].pop(key, None)
    return depends


def phase_fingerprint(cfg: DictConfig, phase: str, seed: int, upstream: str | None, data_key: str) -> str:
    """The fingerprint of ``phase`` in the run ``cfg``."""
    phase_cfg = _plain(cfg.phases[phase])
    phase_cfg["seed"] = seed
    phase_cfg.pop("init_from", None)  # represented by ``upstream``
    payload = {
        "phase": phase,
        "config": phase_cfg,
        "depends": _depends(cfg, phase),
        "upstream": upstream,
        "data": data_key,
        "code": code_version(),
    }
    world_size = dist_info().world_size
    if world_size > 1:  # batch_size is per process: more ranks, a larger global batch, another result
        payload["world_size"] = world_size
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:20]


def data_key(manifest_fingerprint: str, cfg: DictConfig) -> str:
    """The cache's content plus the window and split settings that turn it into datasets."""
    payload = {"manifest": manifest_fingerprint, "windows": _plain(cfg.windows), "split": _plain(cfg.split)}
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]
