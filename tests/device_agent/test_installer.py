"""Installing artifacts: commit, A/B swap, release monotonicity, compatibility, self-test failures, events."""

from __future__ import annotations

import json
import tempfile
from importlib import metadata

import numpy as np
import pytest

from edgeml.artifact import pack
from edgeml.artifact.npz import npz_bytes
from edgeml.device_agent.update.lifecycle import LifecycleError, State
from edgeml.device_agent.update.self_test import SelfTestPolicy
from edgeml.runtimes import at_least, runtime_version

ORT_VERSION = metadata.version("onnxruntime")


def test_first_install_commits_into_slot_a(tmp_path, make_installer, digits_artifact, assert_serving):
    installer = make_installer(tmp_path / "agent")
    assert installer.active_model() is None
    result = installer.install(digits_artifact)
    assert result.ok and result.outcome is State.COMMITTED, result.describe()
    assert (result.active_slot, result.version, result.release) == ("a", "1.2.3", 1_002_003)
    assert result.self_test.outputs["logits"]["cosine"] > 0.999
    assert result.self_test.latency_ms <= result.self_test.latency_budget_ms
    state = installer.state()
    assert (state.lifecycle, state.active, state.committed_release) == (State.COMMITTED, "a", 1_002_003)
    assert state.slots["b"] is None
    assert_serving(installer, "1.2.3")
    assert installer.recorder.kinds == ["accepted", "verifying", "installing", "self_test", "committed"]
    assert (
        installer.recorder.events[-1][1] | {"active_slot": "a", "release": 1_002_003}
        == installer.recorder.events[-1][1]
    )


def test_newer_release_swaps_slots_and_keeps_the_old_one(
    tmp_path, make_installer, digits_artifact, newer_artifact, assert_serving
):
    installer = make_installer(tmp_path / "agent")
    assert installer.install(digits_artifact).ok
    result = installer.install(newer_artifact)
    assert result.ok and result.active_slot == "b", result.describe()
    state = installer.state()
    assert state.committed_release == 1_003_000
    assert state.slots["a"].version == "1.2.3" and state.slots["b"].version == "1.3.0"
    assert (tmp_path / "agent" / "slots" / "a" / "model.onnx").is_file()
    assert_serving(installer, "1.3.0")
    assert installer.recorder.kinds[5] == "accepted"  # the next update starts from committed


def test_older_or_equal_release_is_refused_unless_rollback_is_allowed(
    tmp_path, make_installer, digits_artifact, newer_artifact, assert_serving
):
    installer = make_installer(tmp_path / "agent")
    assert installer.install(newer_artifact).ok
    for artifact in (digits_artifact, newer_artifact):
        refused = installer.install(artifact)
        assert refused.outcome is State.REFUSED and refused.code == "release_not_newer", refused.describe()
        assert "not newer than release 1003000" in refused.reason and "allow_rollback" in refused.hint
        assert_serving(installer, "1.3.0")
    rolled = installer.install(digits_artifact, allow_rollback=True)
    assert rolled.ok and rolled.active_slot == "b", rolled.describe()
    assert_serving(installer, "1.2.3")
    assert installer.state().committed_release == 1_003_000  # the highest committed release is kept
    again = installer.install(newer_artifact)  # after a revert, the highest release may come back
    assert again.ok and again.version == "1.3.0", again.describe()
    assert_serving(installer, "1.3.0")


def test_a_packed_tar_installs_like_a_folder(tmp_path, make_installer, digits_artifact, assert_serving, monkeypatch):
    tar = pack(digits_artifact, tmp_path / "digits.tar")
    # NOTE: /tmp is often a small RAM disk on a device: the agent must not unpack there (a missing one fails it)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "no-system-tmp"))
    installer = make_installer(tmp_path / "agent")
    assert installer.install(tar).ok
    assert_serving(installer, "1.2.3")
    assert sorted(p.name for p in (tmp_path / "agent" / "slots").iterdir()) == ["a"]  # nothing unpacked is left


def _edit_target(manifest):
    manifest["target"]["id"] = "npu-openvino"


def _edit_schema(manifest):
    manifest["schema_version"] = 2


def _drop_self_test(manifest):
    del manifest["self_test"]


def _needs_future_runtime(manifest):
    manifest["target"]["runtime_min_version"] = "99.0"


@pytest.mark.parametrize(
    ("edit", "code", "needle"),
    [
        (_edit_target, "wrong_target", "compiled for target 'npu-openvino'; this device is 'cpu-ort'"),
        (_edit_schema, "schema_version", "schema_version 2 is not supported"),
        (_drop_self_test, "no_self_test", "has no usable self_test"),
        (_needs_future_runtime, "runtime_too_old", f"needs onnxruntime ≥ 99.0; this device has {ORT_VERSION}"),
    ],
)
def test_validly_signed_but_unfit_manifests_are_refused(
    tmp_path, make_installer, digits_artifact, newer_artifact, resign, assert_serving, edit, code, needle
):
    installer = make_installer(tmp_path / "agent")
    assert installer.install(digits_artifact).ok
    result = installer.install(resign(newer_artifact, edit=edit))
    assert (result.outcome, result.code) == (State.REFUSED, code), result.describe()  # a refusal, not a rollback
    assert needle in result.reason
    assert installer.state().last_failure.code == code
    assert_serving(installer, "1.2.3")


def test_runtime_versions_compare_by_their_numbers():
    assert at_least("1.32.0", "1.17") and at_least("2026.4.1", "2024.0") and at_least("1.17", "1.17")
    assert at_least("1.9.2", "1.17") is False and at_least("1.20rc1", "1.21") is False
    assert at_least("not a version", "1.17") is None  # unknown: not refused (as when no version is found)
    assert runtime_version("onnxruntime") == ORT_VERSION and runtime_version("no-such-runtime") is None


def test_runtime_missing_on_the_device_is_refused(tmp_path, make_installer, digits_artifact):
    installer = make_installer(tmp_path / "agent", runtimes=["openvino"])
    result = installer.install(digits_artifact)
    assert result.code == "runtime_unavailable" and "needs runtime 'onnxruntime'" in result.reason
    assert installer.active_model() is None and not (tmp_path / "agent" / "slots" / "a").exists()


def test_model_that_fails_to_load_rolls_back(
    tmp_path, make_installer, digits_artifact, newer_artifact, resign, assert_serving
):
    installer = make_installer(tmp_path / "agent")
    assert installer.install(digits_artifact).ok
    garbage = resign(newer_artifact, files={"model.onnx": b"\x08\x07not an onnx model" * 100})
    result = installer.install(garbage)
    assert result.code == "model_load_failed", result.describe()
    assert "cannot load model.onnx of digits 1.3.0" in result.reason
    _assert_candidate_wiped(installer, tmp_path / "agent")
    assert_serving(installer, "1.2.3")


def _wrong_expected(artifact, factor):
    with np.load(artifact / "self_test.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["expected/logits"] = arrays["expected/logits"] * factor
    return npz_bytes(arrays)


def test_self_test_mismatch_rolls_back(
    tmp_path, make_installer, digits_artifact, newer_artifact, resign, assert_serving
):
    installer = make_installer(tmp_path / "agent")
    assert installer.install(digits_artifact).ok
    altered = resign(newer_artifact, files={"self_test.npz": _wrong_expected(newer_artifact, -1.0)})
    result = installer.install(altered)
    assert result.code == "self_test_mismatch", result.describe()
    assert "output 'logits' does not reproduce the self-test" in result.reason
    _assert_candidate_wiped(installer, tmp_path / "agent")
    assert_serving(installer, "1.2.3")


def test_atol_zero_catches_a_tiny_mismatch(tmp_path, make_installer, newer_artifact, resign):
    def strict(manifest):
        manifest["self_test"]["atol"] = 0.0

    altered = resign(newer_artifact, files={"self_test.npz": _wrong_expected(newer_artifact, 1.0001)}, edit=strict)
    result = make_installer(tmp_path / "agent").install(altered)
    assert result.code == "self_test_mismatch" and "(atol 0)" in result.reason, result.describe()


def test_latency_over_budget_rolls_back(tmp_path, make_installer, digits_artifact):
    policy = SelfTestPolicy(latency_factor=1e-9, latency_floor_ms=0.0)
    result = make_installer(tmp_path / "agent", self_test=policy).install(digits_artifact)
    assert result.code == "latency_budget" and "over its budget" in result.reason, result.describe()


def test_refused_event_carries_code_and_reason(tmp_path, make_installer, newer_artifact, resign):
    installer = make_installer(tmp_path / "agent")
    installer.install(resign(newer_artifact, edit=_edit_target))
    kind, fields = installer.recorder.events[-1]
    assert kind == "refused" and fields["code"] == "wrong_target" and fields["version"] == "1.3.0"
    assert fields["previous"] == "verifying" and installer.state().slots["b"] is None


def test_a_failing_event_callback_does_not_stop_the_install(tmp_path, keypair, digits_artifact):
    from edgeml.device_agent.update.installer import Installer

    def broken(kind, **fields):
        raise RuntimeError("reporter down")

    installer = Installer(tmp_path / "agent", keypair[1], "cpu-ort", ["onnxruntime"], on_event=broken)
    assert installer.install(digits_artifact).ok


def test_missing_artifact_and_install_during_an_interrupted_update(tmp_path, make_installer):
    installer = make_installer(tmp_path / "agent")
    assert installer.install(tmp_path / "nope.tar").code == "not_found"
    state_file = tmp_path / "agent" / "state.json"
    state = json.loads(state_file.read_text())
    state["lifecycle"] = "installing"
    state_file.write_text(json.dumps(state))
    with pytest.raises(LifecycleError, match="already in progress") as info:
        installer.install(tmp_path / "nope.tar")
    assert "resume()" in info.value.hint


def _assert_candidate_wiped(installer, state_dir):
    state = installer.state()
    assert state.lifecycle is State.ROLLED_BACK and state.active == "a" and state.slots["b"] is None
    assert sorted(p.name for p in (state_dir / "slots").iterdir()) == ["a"]


def test_a_bug_in_a_step_rolls_back_and_still_raises(tmp_path, make_installer, digits_artifact, monkeypatch):
    import edgeml.device_agent.update.update_steps as steps_module

    def boom(*args, **kwargs):
        raise RuntimeError("bug in the self-test")

    monkeypatch.setattr(steps_module, "run_self_test", boom)
    installer = make_installer(tmp_path / "agent")
    with pytest.raises(RuntimeError, match="bug in the self-test"):
        installer.install(digits_artifact)
    state = installer.state()
    assert (state.lifecycle, state.last_failure.code, state.slots["a"]) == (State.ROLLED_BACK, "internal_error", None)
    assert not (tmp_path / "agent" / "slots" / "a").exists()
