"""eegphase.engine."""
