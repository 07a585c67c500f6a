"""eegphase.tracking."""
