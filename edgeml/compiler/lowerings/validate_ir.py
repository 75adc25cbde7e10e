"""An `ov.Model` + the OpenVINO device it is for → proof that the device's plugin compiles it, or, where this
host lacks that device, proof that the CPU plugin compiles the same IR, and a note that says which.

The CPU target needs no such step: the compiler runs every candidate on the CPU plugin when it measures it.
"""

from __future__ import annotations

from typing import Any

__all__ = ["validate_ir"]


def validate_ir(model: Any, device: str) -> tuple[str, ...]:
    """Compile `model` for `device` (or, if absent here, the CPU); the note goes into the manifest."""
    import openvino as ov

    core = ov.Core()
    if device == "CPU":
        return ()
    if device in core.available_devices:
        core.compile_model(model, device)
        return (f"IR compiled for OpenVINO device {device} on this host",)
    core.compile_model(model, "CPU")
    return (
        f"OpenVINO device {device} was not present at compile time: the IR was compiled and validated on the "
        f"CPU plugin (OpenVINO {ov.__version__.split('-')[0]}), never on the {device} itself",
    )
