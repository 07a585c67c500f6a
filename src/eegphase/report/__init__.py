"""Pipeline comparison reports from MLflow: ``python -m eegphase.report`` (see ``build.py``)."""
