"""`compile_model(latency_on_device=…)` on the digits CNN through the real ONNX Runtime, with a fake device
hook: the device's p50 decides speed (the host's kept beside it), and the manifest says where each figure was
measured. The hook's figures are the test's inputs; the fleet path is tests/fleet/test_fleet_bench_over_mosquitto.py."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import edgeml
from edgeml.errors import EdgemlError
from edgeml.host import host_info

DIGITS = Path(__file__).resolve().parents[2] / "examples" / "digits"
DEVICE = {"description": "Arm64 ASIMD dotprod", "cpu": "Cortex-A76", "arch": "aarch64", "isa": ["asimddp"]}


class FakeDevice:
    """Answers each draft with a p50 the test chose (ms per candidate), the way measure_drafts does."""

    def __init__(self, p50_ms: dict[str, float]) -> None:
        self.p50_ms, self.drafts = p50_ms, {}

    def __call__(self, drafts: dict[str, Path]) -> dict[str, dict]:
        for name, folder in drafts.items():
            manifest = json.loads((folder / "manifest.json").read_text())
            assert manifest["precision"] == name and (folder / manifest["target"]["model_file"]).is_file()
            assert (folder / manifest["self_test"]["file"]).is_file()
            self.drafts[name] = manifest
        return {
            name: {
                "latency": {"p50_ms": self.p50_ms[name], "p90_ms": self.p50_ms[name], "p99_ms": self.p50_ms[name]},
                "measured_on": {"device": "pi-7", "host": DEVICE, "runtimes": {"onnxruntime": "1.0"}},
            }
            for name in drafts
        }


def _compile(tmp_path, keypair, hook, **kwargs):
    return edgeml.compile(
        str(DIGITS / "model.onnx"), "cpu-ort", out=tmp_path / "out", key=keypair[0], latency_on_device=hook,
        calib=DIGITS / "calib.npz", min_cosine=0.9, **kwargs,
    )  # fmt: skip


@pytest.mark.parametrize(("p50_ms", "chosen"), [({"fp32": 1.0, "int8-static": 3.0}, "fp32"),
                                                ({"fp32": 3.0, "int8-static": 1.0}, "int8-static")])  # fmt: skip
def test_the_device_figures_decide_and_the_manifest_says_where(tmp_path, keypair, p50_ms, chosen):
    hook = FakeDevice(p50_ms)
    result = _compile(tmp_path, keypair, hook)
    assert next(iter(hook.drafts)) == "fp32"  # NOTE: the speed reference first: a bench job's baseline
    assert result.decision.chosen == chosen
    m = edgeml.verify(result.out, keypair[1]).manifest
    assert m["precision"] == chosen
    host = host_info().to_dict()
    for name, c in m["decision"]["candidates"].items():
        assert c["latency"]["p50_ms"] == p50_ms[name] and c["host_latency"]["p50_ms"] > 0
        assert c["measured_on"]["latency"]["device"] == "pi-7"
        assert c["measured_on"]["latency"]["isa"] == DEVICE["isa"]
        assert c["measured_on"]["host_latency"]["isa"] == host["isa"]
    assert m["metrics"]["latency_ms"]["p50_ms"] == p50_ms[chosen]
    assert m["metrics"]["latency_measured_on"]["device"] == "pi-7"
    assert m["metrics"]["host_latency_ms"] == m["decision"]["candidates"][chosen]["host_latency"]
    assert "device pi-7" in m["decision"]["verdicts"]["int8-static"]
    explain = json.loads((result.out / m["explain"]["file"]).read_text())
    assert explain["latency_measured_on"]["device"] == "pi-7" and explain["host"]["isa"] == host["isa"]


def test_without_a_hook_nothing_says_device(tmp_path, keypair):
    m = _compile(tmp_path, keypair, None).manifest
    assert "latency_measured_on" not in m["metrics"] and "host_latency_ms" not in m["metrics"]
    assert all("measured_on" not in c for c in m["decision"]["candidates"].values())
    assert "latency_measured_on" not in json.loads((tmp_path / "out" / m["explain"]["file"]).read_text())


def test_a_device_that_does_not_answer_fails_the_compile(tmp_path, keypair):
    def offline(drafts):
        raise EdgemlError("fp32 was not measured on device pi-7: offline", "is pi-7 online?")

    with pytest.raises(EdgemlError, match="pi-7"):
        _compile(tmp_path, keypair, offline)
    assert not (tmp_path / "out").exists()


def test_a_pinned_int8_is_timed_against_the_float_source_on_the_device(tmp_path, keypair):
    hook = FakeDevice({"float": 2.0, "int8-static": 4.0})
    result = _compile(tmp_path, keypair, hook, options={"precision": "int8-static"})
    assert list(hook.drafts) == ["float", "int8-static"]
    m = result.manifest
    assert m["metrics"]["float_latency_ms"]["p50_ms"] == 2.0 and m["metrics"]["speedup_vs_float"] == 0.5
    assert "slower than float on device pi-7" in m["decision"]["reason"]
