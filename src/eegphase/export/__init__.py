"""The challenge submission export: ``python -m eegphase.export c1=... c2=... out=submission.zip``."""

from eegphase.export.builder import ExportError, SubmissionModel, build_submission

__all__ = ["ExportError", "SubmissionModel", "build_submission"]
