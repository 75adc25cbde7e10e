"""Can ONNX Runtime's GPU providers run this model? The cpu-ort check, unchanged: op domains first, then
ONNX Runtime itself loads the model.

The load runs on the CPUExecutionProvider, the only one the compile host has; CUDA and TensorRT place any
node they lack a kernel for on that same CPU provider at run time, so a model ORT loads here also loads
on the device (slower where nodes fall back, which this check cannot see without a GPU).
"""

from __future__ import annotations

from edgeml.targets.cpu_ort.check import check

__all__ = ["check"]
