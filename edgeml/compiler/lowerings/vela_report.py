"""A Vela run → the report an Ethos-U artifact carries (`vela_report.json`): where each operator runs, and
Vela's estimates of cycles, inference time, SRAM and flash.

Placement is read from Vela's output model itself: every operator Vela placed on the NPU is inside an
`ethos-u` custom operator, so each builtin operator left in it is a CPU fallback, named by type and output
tensor. Vela's console warnings give the reason for each (matched by output tensor name). Figures come from
the summary CSV (Vela 5.2 prints no cycle count on the console); memory is in KiB, as Vela reports it.
"""

from __future__ import annotations

import hashlib
import re
from importlib import metadata
from typing import Any

from edgeml.compiler.lowerings.run_vela import VelaOptions, VelaRun
from edgeml.compiler.lowerings.tflite_io import io_tensors
from edgeml.compiler.lowerings.tflite_operators import tflite_operators

__all__ = ["NPU_OPERATOR", "vela_report"]

NPU_OPERATOR = "ethos-u"  # the custom operator Vela packs NPU command streams into
_COUNT = re.compile(r"^(CPU|NPU) operators = (\d+) \(([\d.]+)%\)", re.M)
_WARNING = re.compile(
    r"^Warning \(supported operators\) operator: (\w+), ofm: '(.*)'\nReason: (.*)(?:\n(?!Warning)(.+))?", re.M
)


def vela_report(run: VelaRun, reference: bytes, options: VelaOptions, files: dict[str, str]) -> dict[str, Any]:
    """`files` names the artifact's files: {"npu": Vela's model, "cpu_reference": the INT8 TFLite Vela compiled}."""
    s = run.summary
    clock = float(s["core_clock"])
    return {
        "vela_version": metadata.version("ethos-u-vela"),
        "accelerator": options.accelerator,
        "system_config": options.system_config,
        "memory_mode": options.memory_mode,
        "config_file": options.config_file,
        "optimise": options.optimise,
        "operators": _operators(run),
        "fallback": _fallback(run),
        "cycles": {k.removeprefix("cycles_"): int(float(v)) for k, v in s.items() if k.startswith("cycles_")},
        "clock_mhz": round(clock / 1e6, 3),
        "inference_time_ms": round(float(s["inference_time"]) * 1e3, 6),
        "inferences_per_second": round(float(s["inferences_per_second"]), 3),
        "memory_kib": {k.removesuffix("_memory_used"): float(v) for k, v in s.items() if k.endswith("_memory_used")},
        "storage": {"weights": s["weights_storage_area"], "feature_maps": s["feature_map_storage_area"]},
        "weights_bytes": {
            "original": int(s["total_original_weights"]),
            "npu_encoded": int(s["total_npu_encoded_weights"]),
        },
        "macs": int(float(s["nn_macs"])),
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


def _operators(run: VelaRun) -> dict[str, Any]:
    counts = {kind.lower(): (int(n), float(pct)) for kind, n, pct in _COUNT.findall(run.console)}
    npu, npu_pct = counts.get("npu", (0, 0.0))
    cpu, _ = counts.get("cpu", (0, 0.0))
    return {"npu": npu, "cpu": cpu, "npu_percent": npu_pct}


def _fallback(run: VelaRun) -> list[dict[str, str]]:
    reasons = {
        ofm: " ".join(p for p in (reason, more) if p).strip() for _, ofm, reason, more in _WARNING.findall(run.console)
    }
    return [
        {"op": op.type, "tensor": op.outputs[0] if op.outputs else "", "reason": _reason(op.outputs, reasons)}
        for op in tflite_operators(run.model)
        if op.type != NPU_OPERATOR
    ]


def _reason(outputs: tuple[str, ...], reasons: dict[str, str]) -> str:
    found = next((reasons[name] for name in outputs if name in reasons), None)
    return found or "Vela placed it on the CPU (no operator warning; e.g. float tensors around a float operator)"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
