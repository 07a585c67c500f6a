"""eegphase.models: LaBraM (+ VQ-NSP tokenizer), SignalJEPA, a wrapper for braindecode models (EEGNeX), heads
and channel adapters.

A model config's ``encoder`` (``_target_`` + arguments) is built by
:func:`eegphase.models.registry.instantiate_encoder`; shipped models also by short name through
:func:`eegphase.models.registry.build_encoder`.
"""
