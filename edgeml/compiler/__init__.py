"""Compile models per hardware target: intake, passes, measurement, selection, signed artifact."""
