"""eegphase.objectives."""
