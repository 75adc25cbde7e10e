"""ONNX bytes → what OpenVINO says about them, without compiling: the frontend converts the model (as the
lowering does, with the same static shapes), then the device plugin's `query_model` reports per op whether it
has an implementation. One issue per op it lacks; where conversion fails, one per ONNX node OpenVINO names
(targets/openvino/convert_issues.py), or one for the whole model with OpenVINO's whole reason.

Where this host lacks the device (an NPU on a build server), its plugin cannot be asked; the CPU plugin
answers instead, and the issue says so.
"""

from __future__ import annotations

from edgeml.compiler.lowerings.openvino_ir import StaticShapes, read_onnx
from edgeml.compiler.optional_dependency import import_optional
from edgeml.targets.check_report import CheckIssue
from edgeml.targets.openvino.convert_issues import convert_issues

__all__ = ["query_openvino"]


def query_openvino(data: bytes, shapes: StaticShapes, device: str, target_id: str) -> tuple[int, list[CheckIssue]]:
    """(number of OpenVINO ops, issues) for `data` on `device` ("CPU", "NPU", ...)."""
    import_optional("openvino", "compile", f"target {target_id}")
    import openvino as ov

    try:
        model = read_onnx(data, shapes, f"target {target_id}")
    except Exception as exc:  # OpenVINO raises its own OpConversionFailure/GeneralFailure types
        import onnx

        verb = "convert or reshape" if shapes else "convert"
        return 0, convert_issues(exc, onnx.load_model_from_string(data), _version(ov), verb)

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
            f"OpenVINO {_version(ov)} {asked} plugin has no implementation of "
            f"{op.get_type_name()}-{op.get_type_info().version_id}{stand_in}",
        )
        for op in ops
        if op.get_friendly_name() not in supported
    ]
    return len(ops), issues


def _version(ov) -> str:
    return ov.__version__.split("-")[0]
