"""eegphase.pipeline."""
