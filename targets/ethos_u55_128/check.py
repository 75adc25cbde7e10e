"""Can the ethos-u55-128 system run this model, and what falls back to its CPU? See ../ethos_u/check.py."""

from __future__ import annotations

from edgeml.targets.ethos_u.check import check

__all__ = ["check"]
