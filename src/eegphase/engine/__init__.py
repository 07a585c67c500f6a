"""eegphase.engine: the one plain-PyTorch training loop every phase trains through.

``Trainer(model, step_fn, TrainerConfig(...)).fit(train_loader, val_loader, epochs)``; see ``loop.py``.
"""

from eegphase.engine.checkpoint import load_checkpoint, save_checkpoint
from eegphase.engine.distributed import cleanup_distributed, init_distributed
from eegphase.engine.errors import CheckpointError, NonFiniteLossError
from eegphase.engine.loop import FitResult, Trainer, TrainerConfig
from eegphase.engine.optim import OptimizerConfig, ScheduleConfig
from eegphase.engine.precision import make_precision
from eegphase.engine.seeding import make_generator, seed_everything, seed_worker

__all__ = [
    "CheckpointError",
    "FitResult",
    "NonFiniteLossError",
    "OptimizerConfig",
    "ScheduleConfig",
    "Trainer",
    "TrainerConfig",
    "cleanup_distributed",
    "init_distributed",
    "load_checkpoint",
    "make_generator",
    "make_precision",
    "save_checkpoint",
    "seed_everything",
    "seed_worker",
]
