"""Passes: small ONNX → ONNX transformations with typed configs (see base.py)."""
