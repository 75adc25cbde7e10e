"""OpenVINO's conversion error + the ONNX model → one check issue per ONNX node it failed on, each naming the
node, its op, OpenVINO's reason and what to do.

`ov.convert_model` reports every node it could not convert in one text ("Failed operations detailed log",
"No conversion rule found for operations"). Cut to a fixed length it named half a node and no fix; here each
failed node gets its own issue, found in the model (inside `If`/`Loop` bodies too). Where the model has
control flow, the issue says so: OpenVINO's ONNX frontend fails on tensors whose rank it cannot know, which an
`If` whose branches differ in rank (silero-vad's) makes, even where a node-level query said "supported".
"""

from __future__ import annotations

import re
from typing import Any

from edgeml.targets.check_report import CheckIssue
from edgeml.targets.graph_kind import CONTROL_FLOW, walk_nodes

__all__ = ["convert_issues"]

_RULE = "openvino-convert"
_NOISE = (
    "Check '", "FrontEnd API failed", "[ONNX Frontend] Conversion failed", "While validating", "Summary:",
    "To facilitate", "Exception from src/", "Model wasn't fully converted",
)  # fmt: skip
_MAX_DETAIL = 2000


def convert_issues(exc: Exception, model: Any, version: str, verb: str = "convert") -> list[CheckIssue]:
    """Issues for the nodes OpenVINO names in `exc`, else one for the whole model with OpenVINO's full reason."""
    text = str(exc)
    nodes = walk_nodes(model.graph)
    by_name = {}
    for node, inside in nodes:
        for key in (node.name, *node.output[:1]):
            by_name.setdefault(key, (node, inside))
    flow = [(n.name or n.op_type, inside) for n, inside in nodes if n.op_type in CONTROL_FLOW]
    control = sorted({name for name, inside in flow if not inside}) or sorted({name for name, _ in flow})
    issues = [_failed_node(entry, by_name, control, version) for entry in _failed_entries(text)]
    issues += _unconverted_ops(text, nodes, version)
    if issues:
        return issues
    detail = f"OpenVINO {version} cannot {verb} the model: {_reason(text.splitlines())}"
    return [CheckIssue("(model)", "ov.convert_model", _RULE, detail, _fix(control))]


def _failed_entries(text: str) -> list[tuple[str, str]]:
    """("Conv", the lines OpenVINO wrote about it) per entry of its detailed log."""
    entries = re.findall(r"^-- ([\w.]+)-\d+ with a message:\n(.*?)(?=^-- |^Summary:|\Z)", text, re.M | re.S)
    return [(op, body) for op, body in entries]


def _failed_node(entry: tuple[str, str], by_name: dict, control: list[str], version: str) -> CheckIssue:
    op, body = entry
    named = re.search(r"<Node\(([\w.]+)\): ([^>]+)>", body)
    name = named.group(2) if named else f"({op} node)"
    node, inside = by_name.get(name, (None, ()))
    where = f" inside {' → '.join(inside)}" if inside else ""
    node_name = node.name if node is not None and node.name else name
    detail = f"OpenVINO {version} cannot convert this {op}{where}: {_reason(body.splitlines())}"
    if control:
        detail += f" (the model has control flow: {', '.join(control[:4])}{'…' if len(control) > 4 else ''})"
    return CheckIssue(node_name, op, _RULE, detail, _fix(control))


def _unconverted_ops(text: str, nodes: list, version: str) -> list[CheckIssue]:
    """One issue per ONNX node of an op type OpenVINO has no conversion rule for."""
    listed = re.search(r"No conversion rule found for operations: (.+)", text)
    if not listed:
        return []
    ops = {re.sub(r"-\d+$", "", o.strip()) for o in listed.group(1).split(",")}
    return [_no_rule(node, inside, version) for node, inside in nodes if node.op_type in ops]


def _no_rule(node: Any, inside: tuple[str, ...], version: str) -> CheckIssue:
    where = f" (inside {' → '.join(inside)})" if inside else ""
    return CheckIssue(
        node.name or node.output[0],
        node.op_type,
        _RULE,
        f"OpenVINO {version}'s ONNX frontend has no conversion rule for {node.op_type}{where}",
        f"replace {node.op_type} with standard ONNX ops before export, or compile for cpu-ort",
    )


def _reason(lines: list[str]) -> str:
    """OpenVINO's lines less source locations and boilerplate: what is wrong, whole (never cut mid-word)."""
    kept = [line.strip(" -") for line in lines if line.strip(" -") and not line.strip(" -").startswith(_NOISE)]
    text = "; ".join(dict.fromkeys(kept)) or "no reason given"
    return text if len(text) <= _MAX_DETAIL else text[: text.rfind(";", 0, _MAX_DETAIL)] + "; …"


def _fix(control: list[str]) -> str:
    if control:
        return (
            "OpenVINO's ONNX frontend needs each tensor's rank, which this model's control flow leaves open: export "
            "it without If/Loop (trace the branch your data takes, e.g. with the input that picks it fixed), or "
            "compile for cpu-ort (ONNX Runtime runs control flow)"
        )
    return "compile for cpu-ort, or export the model with the ops OpenVINO converts"
