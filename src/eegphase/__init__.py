"""eegphase: multi-phase EEG training driven by Hydra and tracked in MLflow."""

__version__ = "0.1.0"
