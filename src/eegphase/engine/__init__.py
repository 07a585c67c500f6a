"""eegphase.engine: the one plain-PyTorch training loop every phase trains through.

``Trainer(model, step_fn, TrainerConfig(...)).fit(train_loader, val_loader, epochs)``; see ``loop.py``.
Import from the submodules (``eegphase.engine.loop``, ``.checkpoint``, ``.distributed``, ...).
"""
