"""eegphase.models."""
