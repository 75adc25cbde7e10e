"""Batch inference (`edgeml run`): an artifact over a dataset through the runtime adapter the agent serves with.
A layer above the core: it reads data with edgeml.calibration's readers; nothing in the core imports it."""

from edgeml.batch.batch_run import FORMATS, RunSummary, run_artifact

__all__ = ["FORMATS", "RunSummary", "run_artifact"]
