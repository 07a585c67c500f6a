"""eegphase.phases."""
