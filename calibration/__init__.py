"""Calibration and evaluation data: readers, sampling, the fit check, and the drift reference profile."""

from __future__ import annotations

from edgeml.calibration.dataset import Dataset
from edgeml.calibration.read_dataset import check_fits, read_dataset
from edgeml.calibration.reference_profile import build_reference_profile

__all__ = ["Dataset", "build_reference_profile", "check_fits", "read_dataset"]
