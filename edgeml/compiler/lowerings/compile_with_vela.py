"""PyTorch source → full-INT8 TFLite (litert-torch PT2E) → Ethos-U model compiled by Vela, with Vela's report.

Files: `model_vela.tflite` (what the device runs: NPU command streams in `ethos-u` custom operators, any
fallback as builtin operators for the Cortex-M), `reference_int8.tflite` (exactly the INT8 model Vela
compiled) and `vela_report.json` (NPU vs CPU operators, fallback names and reasons, cycles, estimated time,
SRAM and flash). No host interpreter can run `ethos-u` operators, so the file the compile host runs, and
that the measurements and self-test describe, is the CPU reference; Vela's estimate is the NPU figure.
`require_full_offload` fails the compile when Vela leaves any operator on the CPU; `min_npu_share` when the
NPU's share of the operators (Vela's count) is below it. Either failure names the fallback operators.
The summary states the NPU's share of operators and MACs, the fallback operators, and the time as Vela's NPU
estimate plus edgeml's stated estimate of the CPU part (estimate_cpu_fallback.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from edgeml.compiler.lowering import Lowered, Lowering
from edgeml.compiler.lowerings.convert_to_tflite_int8 import TFLITE_TOOLS
from edgeml.compiler.lowerings.quantize_pt2e_to_tflite import quantize_pt2e_to_tflite
from edgeml.compiler.lowerings.run_vela import DEFAULT_CONFIG, VelaOptions, run_vela
from edgeml.compiler.lowerings.tflite_io import describe_io
from edgeml.compiler.lowerings.torch_module_for import torch_module_for
from edgeml.compiler.lowerings.vela_report import describe_fallback, short_tensor_names, vela_report
from edgeml.compiler.passes.base import PassConfig, PassContext, option
from edgeml.errors import TargetError

__all__ = [
    "REFERENCE_MODEL", "VELA_MODEL", "VELA_REPORT", "CompileWithVela", "CompileWithVelaConfig", "device_summary",
]  # fmt: skip

VELA_MODEL = "model_vela.tflite"
REFERENCE_MODEL = "reference_int8.tflite"
VELA_REPORT = "vela_report.json"


@dataclass(frozen=True)
class CompileWithVelaConfig(PassConfig):
    accelerator: str = option("ethos-u55-128", "Vela --accelerator-config")
    system_config: str = option("Ethos_U55_High_End_Embedded", "Vela --system-config (a section of config_file)")
    memory_mode: str = option("Shared_Sram", "Vela --memory-mode (a section of config_file)")
    config_file: str = option(DEFAULT_CONFIG, "Vela .ini: a path, or a file bundled with Vela")
    optimise: str = option("Performance", "Vela --optimise: Performance or Size")
    require_full_offload: bool = option(False, "fail when Vela leaves any operator on the CPU")
    min_npu_share: float = option(0.0, "fail when Vela places less than this share of the operators on the NPU")
    per_channel: bool = option(True, "per-output-channel int8 weight scales")
    keep_float: tuple[str, ...] = option((), "submodules (paths in the PyTorch source) left in float32 on the CPU")


class CompileWithVela(Lowering):
    name = "compile-with-vela"
    Config = CompileWithVelaConfig
    uses_calibration = True
    tools = (*TFLITE_TOOLS, "ethos-u-vela")

    def apply(self, model: bytes, ctx: PassContext) -> Lowered:
        cfg, needed_for = self.config, f"lowering {self.name}"
        module = torch_module_for(ctx.source, ctx.calibration, needed_for)
        tflite = quantize_pt2e_to_tflite(
            module, ctx.signature, ctx.calibration, cfg.per_channel, ctx.scratch, needed_for, cfg.keep_float
        )
        options = VelaOptions(cfg.accelerator, cfg.system_config, cfg.memory_mode, cfg.config_file, cfg.optimise)
        run = run_vela(tflite.model, options, ctx.scratch, needed_for)
        report = vela_report(run, tflite.model, options, {"npu": VELA_MODEL, "cpu_reference": REFERENCE_MODEL})
        if cfg.require_full_offload and report["fallback"]:
            raise TargetError(_fallback_message(report), _fallback_hint(cfg.accelerator))
        if report["npu_share"]["operators"] < cfg.min_npu_share:
            raise TargetError(
                _share_message(report, cfg.min_npu_share), _fallback_hint(cfg.accelerator, "min_npu_share")
            )
        files = {
            VELA_MODEL: run.model,
            REFERENCE_MODEL: tflite.model,
            VELA_REPORT: json.dumps(report, indent=2, sort_keys=True).encode() + b"\n",
        }
        summary = device_summary(report)
        notes = (*tflite.notes, describe_io(tflite.model), f"{summary}; host figures are of {REFERENCE_MODEL}")
        return Lowered(
            files, REFERENCE_MODEL, "litert", notes, device_model_file=VELA_MODEL, layers=tflite.layers,
            device=_device(report, summary),
        )  # fmt: skip


def device_summary(report: dict) -> str:
    """One sentence for the verdict: NPU shares, fallback operators, time with its CPU part, memory."""
    ops, share, memory, time = (
        report["operators"],
        report["npu_share"],
        report["memory_kib"],
        report["estimated_time_ms"],
    )
    flash = memory.get("off_chip_flash", 0.0) + memory.get("on_chip_flash", 0.0) + memory.get("dram", 0.0)
    cpu_time = (
        f" + CPU ≈{time['cpu']:.3g} ms (edgeml's estimate, cpu_estimate in {VELA_REPORT}) = ≈{time['total']:.3g} ms"
        if report["fallback"]
        else " (no CPU part)"
    )
    return (
        f"{report['accelerator']}: {ops['npu']} of {ops['npu'] + ops['cpu']} operators ({share['operators']:.0%}) and "
        f"{share['macs']:.1%} of MACs on the NPU; CPU fallback: {describe_fallback(report)}; "
        f"NPU {time['npu']:.3g} ms ({report['cycles'].get('total', 0)} cycles at {report['clock_mhz']:g} MHz, "
        f"Vela){cpu_time}; SRAM {memory.get('sram', 0.0):g} KiB, flash/DRAM {flash:g} KiB"
    )


def _device(report: dict, summary: str) -> dict:
    keys = ("accelerator", "operators", "npu_share", "estimated_time_ms", "cycles", "clock_mhz")
    return {k: report[k] for k in keys} | {
        "fallback": [{"op": f["op"], "tensor": f["tensor"], "dtype": f["dtype"]} for f in report["fallback"]],
        "cpu_time_method": report["cpu_estimate"]["method"],
        "report_file": VELA_REPORT,
        "summary": summary,
    }


def _fallback_message(report: dict) -> str:
    ops = short_tensor_names("; ".join(f"{f['op']} ({f['tensor']}): {f['reason']}" for f in report["fallback"]))
    count, accelerator = len(report["fallback"]), report["accelerator"]
    return f"require_full_offload: Vela left {count} operator(s) on the CPU of the {accelerator}: {ops}"


def _share_message(report: dict, required: float) -> str:
    ops, share = report["operators"], report["npu_share"]["operators"]
    return (
        f"min_npu_share={required:g}: Vela placed {ops['npu']} of {ops['npu'] + ops['cpu']} operators "
        f"({share:.1%}) on the NPU of the {report['accelerator']}; CPU fallback: {describe_fallback(report, 20)}. "
        f"Reasons: {_reasons(report)}"
    )


def _reasons(report: dict) -> str:
    """Vela's reason per fallback operator type (the first one's: the rest of a type share it)."""
    first = {}
    for f in report["fallback"]:
        first.setdefault(f["op"], f["reason"])
    return "; ".join(f"{op}: {short_tensor_names(reason)}" for op, reason in first.items())


def _fallback_hint(accelerator: str, option: str = "require_full_offload") -> str:
    return (
        "replace those operators in the model with ones the NPU runs (`edgeml targets --options "
        f"{accelerator}` and Vela's SUPPORTED_OPS list), or "
        + ("drop require_full_offload" if option == "require_full_offload" else "lower min_npu_share")
        + " to ship with CPU fallback"
    )
