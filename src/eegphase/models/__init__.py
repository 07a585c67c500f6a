"""eegphase.models: LaBraM (+ VQ-NSP tokenizer), EEGNeX, SignalJEPA, heads and channel adapters.

Build by name through :func:`eegphase.models.registry.build_encoder`.
"""
