"""ONNX bytes → what OpenVINO says about them, without compiling: the frontend converts the model (as the
lowering does, with the same static shapes), then the device plugin's `query_model` reports per op whether it
has an implementation. One issue per op it lacks, or one for the whole model if conversion fails.

Where this host lacks the device (an NPU on a build server), its plugin cannot be asked; the CPU plugin
answers instead, and the issue says so.
"""

from __future__ import annotations

from edgeml.compiler.lowerings.openvino_ir import StaticShapes, read_onnx
from edgeml.compiler.optional_dependency import import_optional
from edgeml.targets.check_report import CheckIssue

__all__ = ["query_openvino"]


def query_openvino(data: bytes, shapes: StaticShapes, device: str, target_id: str) -> tuple[int, list[CheckIssue]]:
    """(number of OpenVINO ops, issues) for `data` on `device` ("CPU", "NPU", ...)."""
    import_optional("openvino", "compile", f"target {target_id}")
    import openvino as ov

    try:
        model = read_onnx(data, shapes, f"target {target_id}")
    except Exception as exc:  # OpenVINO raises its own OpConversionFailure/GeneralFailure types
        message = _openvino_message(exc)
        verb = "convert or reshape" if shapes else "convert"
        return 0, [CheckIssue("(model)", "", "openvino-convert", f"OpenVINO cannot {verb} it: {message}")]

    core = ov.Core()
    asked = device if device in core.available_devices else "CPU"
    supported = core.query_model(model, asked)
    ops = model.get_ordered_ops()
    stand_in = "" if asked == device else f" ({device} absent here: the CPU plugin answered)"
    issues = [
        CheckIssue(
            op.get_friendly_name(),
            f"openvino::{op.get_type_name()}",
            "plugin-support",
            f"OpenVINO {ov.__version__.split('-')[0]} {asked} plugin has no implementation of "
            f"{op.get_type_name()}-{op.get_type_info().version_id}{stand_in}",
        )
        for op in ops
        if op.get_friendly_name() not in supported
    ]
    return len(ops), issues


def _openvino_message(exc: Exception) -> str:
    """OpenVINO's error text less its source locations and boilerplate: the lines that name the problem."""
    noise = ("Check '", "FrontEnd API failed", "Summary:", "To facilitate", "Exception from src/")
    lines = [line.strip(" -") for line in str(exc).splitlines() if line.strip() and not line.startswith(noise)]
    return " ".join(lines)[:400] or type(exc).__name__
