"""eegphase.data."""
