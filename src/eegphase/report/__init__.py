"""eegphase.report."""
