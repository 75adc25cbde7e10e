"""Helpers shared by the ONNX Runtime targets (cpu-ort, gpu-ort): their accuracy-aware `int8-mixed` plans."""
