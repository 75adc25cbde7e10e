"""A Vela run → the report an Ethos-U artifact carries (`vela_report.json`): where each operator runs, and
Vela's estimates of cycles, inference time, SRAM and flash.

Placement is read from Vela's output model itself: every operator Vela placed on the NPU is inside an
`ethos-u` custom operator, so each builtin operator left in it is a CPU fallback, named by type and output
tensor. Vela's console warnings give the reason for each (matched by output tensor name). Figures come from
the summary CSV (Vela 5.2 prints no cycle count on the console); memory is in KiB, as Vela reports it.

Vela's cycles and inference time cover the NPU only. `npu_share` states how much of the model that is (its
TFLite operators, and its multiply-accumulates: Vela's NPU MACs beside the CPU operators' MACs,
estimate_cpu_fallback.py), and `estimated_time_ms` adds a stated estimate of the CPU part to Vela's figure.
"""

from __future__ import annotations

import hashlib
import re
from importlib import metadata
from typing import Any

from edgeml.compiler.lowerings.estimate_cpu_fallback import CpuEstimate, estimate_cpu_fallback
from edgeml.compiler.lowerings.run_vela import VelaOptions, VelaRun
from edgeml.compiler.lowerings.tflite_io import io_tensors
from edgeml.compiler.lowerings.tflite_operators import TfliteOperator, tflite_operators

__all__ = ["NPU_OPERATOR", "describe_fallback", "short_tensor_names", "vela_report"]

NPU_OPERATOR = "ethos-u"  # the custom operator Vela packs NPU command streams into
_COUNT = re.compile(r"^(CPU|NPU) operators = (\d+) \(([\d.]+)%\)", re.M)
_WARNING = re.compile(
    r"^Warning \(supported operators\) operator: (\w+), ofm: '(.*)'\nReason: (.*)(?:\n(?!Warning)(.+))?", re.M
)


def vela_report(run: VelaRun, reference: bytes, options: VelaOptions, files: dict[str, str]) -> dict[str, Any]:
    """`files` names the artifact's files: {"npu": Vela's model, "cpu_reference": the INT8 TFLite Vela compiled}."""
    s = run.summary
    clock = float(s["core_clock"])
    cpu_ops = [op for op in tflite_operators(run.model) if op.type != NPU_OPERATOR]
    cpu = estimate_cpu_fallback(cpu_ops, clock / 1e6)
    operators, npu_macs = _operators(run, len(tflite_operators(reference)), len(cpu_ops)), int(float(s["nn_macs"]))
    npu_ms = float(s["inference_time"]) * 1e3
    return {
        "vela_version": metadata.version("ethos-u-vela"),
        "accelerator": options.accelerator,
        "system_config": options.system_config,
        "memory_mode": options.memory_mode,
        "config_file": options.config_file,
        "optimise": options.optimise,
        "operators": operators,
        "npu_share": _npu_share(operators, npu_macs, cpu.macs),
        "fallback": _fallback(run, cpu_ops, cpu),
        "cycles": {k.removeprefix("cycles_"): int(float(v)) for k, v in s.items() if k.startswith("cycles_")},
        "clock_mhz": round(clock / 1e6, 3),
        "inference_time_ms": round(npu_ms, 6),  # Vela's: the NPU part only
        "cpu_estimate": {
            "macs": cpu.macs,
            "cycles": cpu.cycles,
            "ms": round(cpu.ms, 6),
            "method": cpu.method() if cpu_ops else "no operator on the CPU",
        },
        "estimated_time_ms": {"npu": round(npu_ms, 6), "cpu": round(cpu.ms, 6), "total": round(npu_ms + cpu.ms, 6)},
        "inferences_per_second": round(float(s["inferences_per_second"]), 3),
        "memory_kib": {k.removesuffix("_memory_used"): float(v) for k, v in s.items() if k.endswith("_memory_used")},
        "storage": {"weights": s["weights_storage_area"], "feature_maps": s["feature_map_storage_area"]},
        "weights_bytes": {
            "original": int(s["total_original_weights"]),
            "npu_encoded": int(s["total_npu_encoded_weights"]),
        },
        "macs": npu_macs,  # Vela's nn_macs: the NPU's
        "io": io_tensors(reference),
        "files": {
            role: {"file": name, "sha256": _sha(run.model if role == "npu" else reference)}
            for role, name in files.items()
        },
        "cpu_reference": (
            f"{files['cpu_reference']} is byte for byte the INT8 model Vela compiled into {files['npu']} (sha256 "
            "above). Vela implements each NPU operator to reproduce the TFLite reference kernels' integer "
            "results, so this is the model's CPU reference; edgeml measures accuracy, fidelity and the self-test "
            "outputs on it with LiteRT on the host. The NPU model itself runs only on an Ethos-U (or Arm's "
            "Corstone FVP), which is where a bit-exact comparison with these self-test outputs belongs"
        ),
    }


def _operators(run: VelaRun, total: int, cpu: int) -> dict[str, Any]:
    """The TFLite operators of the INT8 model on each side (Vela keeps a CPU operator as it is and packs the rest
    into `ethos-u` operators), and Vela's console counts, which on the NPU side count its own internal
    operations (a SOFTMAX becomes about twenty)."""
    counts = {kind.lower(): (int(n), float(pct)) for kind, n, pct in _COUNT.findall(run.console)}
    npu = max(total - cpu, 0)
    return {
        "npu": npu,
        "cpu": cpu,
        "npu_percent": round(100.0 * npu / total, 1) if total else 100.0,
        "counted": "TFLite operators of the INT8 model Vela compiled",
        "vela_console": {
            "npu": counts.get("npu", (0, 0.0))[0],
            "cpu": counts.get("cpu", (0, 0.0))[0],
            "npu_percent": counts.get("npu", (0, 0.0))[1],
        },
    }


def _npu_share(operators: dict[str, Any], npu_macs: int, cpu_macs: int) -> dict[str, float]:
    total_ops, total_macs = operators["npu"] + operators["cpu"], npu_macs + cpu_macs
    return {
        "operators": round(operators["npu"] / total_ops, 4) if total_ops else 1.0,
        "macs": round(npu_macs / total_macs, 4) if total_macs else 1.0,
    }


def _fallback(run: VelaRun, cpu_ops: list[TfliteOperator], cpu: CpuEstimate) -> list[dict[str, Any]]:
    reasons = {
        ofm: " ".join(p for p in (reason, more) if p).strip() for _, ofm, reason, more in _WARNING.findall(run.console)
    }
    return [
        {
            "op": op.type,
            "tensor": op.outputs[0] if op.outputs else "",
            "dtype": op.output_dtypes[0] if op.output_dtypes else "",
            "macs": macs,
            "estimated_cycles": cycles,
            "reason": _reason(op.outputs, reasons),
        }
        for op, (_, macs, cycles) in zip(cpu_ops, cpu.per_operator, strict=True)
    ]


def _reason(outputs: tuple[str, ...], reasons: dict[str, str]) -> str:
    found = next((reasons[name] for name in outputs if name in reasons), None)
    return found or "Vela placed it on the CPU (no operator warning; e.g. float tensors around a float operator)"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def describe_fallback(report: dict[str, Any], limit: int = 8) -> str:
    """The CPU-fallback operators grouped by type, with counts and where they are: "PRELU ×3 (float32: …)"."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for f in report["fallback"]:
        groups.setdefault(f["op"], []).append(f)
    parts = []
    for op, items in groups.items():
        tensors = ", ".join(_short(i["tensor"]) for i in items[:2]) + (", …" if len(items) > 2 else "")
        parts.append(f"{op} ×{len(items)} ({items[0]['dtype'].lower() or '?'}: {tensors})")
    more = f"; and {len(parts) - limit} more types" if len(parts) > limit else ""
    return "; ".join(parts[:limit]) + more if parts else "none"


def short_tensor_names(text: str) -> str:
    """Text with litert-torch's tensor names cut to their last component (`…/torch.nn.modules.activation.
    PReLU_prelu1;2` → `PReLU_prelu1;2`): still a suffix of the name in vela_report.json, and readable."""
    return _TENSOR_NAME.sub(lambda m: _short(m.group(0)), text)


_TENSOR_NAME = re.compile(r"[\w.<>]+(?:/[\w.<>]+)+;?\d*|(?:[\w<>]+\.){2,}[\w<>]+;?\d*")


def _short(name: str) -> str:
    return name.rsplit("/", 1)[-1].rsplit(".", 1)[-1]
