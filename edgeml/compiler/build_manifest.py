"""Everything a compile learned → the v1 manifest dict (unsigned; the artifact writer signs it)."""

from __future__ import annotations

from typing import Any

from edgeml import __version__
from edgeml.artifact.manifest import SCHEMA_VERSION
from edgeml.compiler.measure import FLOAT
from edgeml.compiler.select_candidate import Budget, Decision, speed_reference
from edgeml.host import host_info
from edgeml.signature import ModelSignature
from edgeml.targets.target_spec import TargetSpec

__all__ = ["SELF_TEST_FILE", "build_manifest"]

SELF_TEST_FILE = "self_test.npz"


def build_manifest(
    *,
    name: str,
    version: str,
    release: int,
    spec: TargetSpec,
    model_file: str,
    measured_model_file: str,
    runtime: str,
    signature: ModelSignature,
    preprocessing: dict[str, Any] | None,
    models: dict[str, dict[str, Any]],
    decision: Decision,
    budget: Budget,
    reference_profile: dict[str, Any],
    self_test_tolerance: dict[str, float],
    provenance: dict[str, Any],
    threads: int,
    notes: list[str],
    explain_file: str | None = None,
    pruning: dict[str, Any] | None = None,
    device: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """`device`: the shipped build's account of the device model where the host cannot run it (Ethos-U: Vela's
    NPU share, CPU fallback and time estimate), as `metrics.device`."""
    chosen = models[decision.chosen]
    ref = models[FLOAT]
    return {
        "schema_version": SCHEMA_VERSION,
        "name": name,
        "version": version,
        "release": release,
        "target": spec.to_dict() | {"model_file": model_file, "runtime": runtime, "notes": notes},
        "files": [],  # filled in by the writer
        "io": _io(signature, chosen.get("io")),
        "preprocessing": preprocessing,
        "precision": decision.chosen,
        "metrics": {
            "accuracy": chosen["accuracy"],
            "float_accuracy": ref["accuracy"],
            "accuracy_drop": None if ref["accuracy"] is None else round(ref["accuracy"] - chosen["accuracy"], 4),
            "fidelity": chosen["fidelity"],
            "latency_ms": chosen["latency"],
            "float_latency_ms": ref["latency"],
            "speedup_vs_float": round(ref["latency"]["p50_ms"] / _same_place(chosen, ref)["p50_ms"], 3),
            "speed_reference": _speed_reference(models, chosen),
            "size_bytes": chosen["size_bytes"],
            "float_size_bytes": ref["size_bytes"],
            "measured_on": host_info().to_dict()
            | {"threads": threads, "runtime": runtime, "model_file": measured_model_file},
            **({"device": device} if device else {}),
            **_device_measured(chosen),
        },
        "decision": decision.to_dict()
        | {
            "budget": budget.to_dict(),
            "candidates": {n: m for n, m in models.items() if n != FLOAT},
        },
        "reference_profile": reference_profile,
        "self_test": {"file": SELF_TEST_FILE} | self_test_tolerance,
        **({"explain": {"file": explain_file}} if explain_file else {}),
        **({"pruning": pruning} if pruning else {}),
        "provenance": provenance | {"edgeml": __version__},
    }


def _same_place(chosen: dict[str, Any], ref: dict[str, Any]) -> dict[str, Any]:
    """The shipped model's latency measured where the float source's was: the host's where only the candidates
    were timed on a device."""
    return chosen["host_latency"] if "host_latency" in chosen and "host_latency" not in ref else chosen["latency"]


def _device_measured(chosen: dict[str, Any]) -> dict[str, Any]:
    """Where the candidates' latency was timed on a device: `latency_ms` is the device's, the host's beside it, and
    where each was measured (`measured_on` stays the build host: accuracy and the float source's latency)."""
    if "host_latency" not in chosen:
        return {}
    return {"host_latency_ms": chosen["host_latency"], "latency_measured_on": chosen["measured_on"]["latency"]}


def _speed_reference(models: dict[str, dict[str, Any]], chosen: dict[str, Any]) -> dict[str, Any]:
    """The model the decision judged speed against (the target's fp32 where built), and the shipped one's
    speedup over it: the figure the compile's table and verdicts quote (`speedup_vs_float` is vs the source)."""
    name = speed_reference(models)
    p50 = models[name]["latency"]["p50_ms"]
    return {"model": name, "p50_ms": p50, "speedup": round(p50 / chosen["latency"]["p50_ms"], 3)}


def _io(signature: ModelSignature, built_io: dict[str, Any] | None) -> dict[str, Any]:
    """Intake's signature (dim names), with every dim the shipped model fixed (e.g. static NPU shapes)."""
    io = signature.to_dict()
    for kind in ("inputs", "outputs"):
        built = {t["name"]: t for t in (built_io or {}).get(kind, [])}
        for tensor in io[kind]:
            shape = built.get(tensor["name"], {}).get("shape")
            if shape and len(shape) == len(tensor["shape"]):
                tensor["shape"] = [b if isinstance(b, int) else a for a, b in zip(tensor["shape"], shape, strict=True)]
    return io
