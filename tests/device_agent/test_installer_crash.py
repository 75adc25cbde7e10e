"""Power cuts: a local install killed right after each lifecycle state is persisted, then resume() in a new
process. (tests/device_agent/agent/test_agent_power_cut.py does the same to a whole agent fed by the fleet,
which also reaches `downloading`.)

The install runs in a subprocess with EDGEML_AGENT_CRASH_AT=<state>, which makes it `os._exit(137)` just
after persisting that state, before its step runs. A fresh Installer then resumes; the device must end in a
final state (committed, refused before the slot was touched, rolled back after), with a model in the active
slot that verifies and loads.
"""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from edgeml.artifact.npz import npz_bytes
from edgeml.device_agent.update.crash_hook import CRASH_ENV
from edgeml.device_agent.update.lifecycle import State

CHILD = """
import sys
from edgeml.device_agent.update.installer import Installer
state_dir, public_key, artifact = sys.argv[1:4]
Installer(state_dir, public_key, "cpu-ort", ["onnxruntime"]).install(artifact)
raise SystemExit("the install finished without reaching the crash point")
"""


def _install_and_crash(state_dir, public_key, artifact, state):
    env = {**os.environ, CRASH_ENV: state.value}
    cmd = [sys.executable, "-c", CHILD, str(state_dir), str(public_key), str(artifact)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 137, f"expected a crash at {state.value}, got rc {proc.returncode}\n{proc.stderr}"


def _mismatching(artifact, resign):
    with np.load(artifact / "self_test.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["expected/logits"] = -arrays["expected/logits"]
    return resign(artifact, files={"self_test.npz": npz_bytes(arrays)})


def _other_target(artifact, resign):
    def edit(manifest):
        manifest["target"]["id"] = "npu-openvino"

    return resign(artifact, edit=edit)


@pytest.mark.parametrize(
    ("crash_at", "serving", "ends_in", "code"),
    [
        (State.ACCEPTED, "1.2.3", State.REFUSED, "interrupted"),
        (State.VERIFYING, "1.2.3", State.REFUSED, "interrupted"),
        (State.INSTALLING, "1.2.3", State.ROLLED_BACK, "interrupted"),
        (State.SELF_TEST, "1.2.3", State.ROLLED_BACK, "interrupted"),
        (State.COMMITTED, "1.3.0", State.COMMITTED, None),
        (State.ROLLED_BACK, "1.2.3", State.ROLLED_BACK, "self_test_mismatch"),
        (State.REFUSED, "1.2.3", State.REFUSED, "wrong_target"),
    ],
)
def test_crash_at_each_step_then_resume(
    tmp_path, keypair, make_installer, digits_artifact, newer_artifact, resign, assert_serving,
    crash_at, serving, ends_in, code,
):  # fmt: skip
    state_dir = tmp_path / "agent"
    assert make_installer(state_dir).install(digits_artifact).ok
    update = {State.ROLLED_BACK: _mismatching, State.REFUSED: _other_target}.get(crash_at)
    _install_and_crash(state_dir, keypair[1], update(newer_artifact, resign) if update else newer_artifact, crash_at)

    installer = make_installer(state_dir)
    state = installer.resume()
    assert state.lifecycle is ends_in
    assert (state.last_failure.code if code else None) == code
    assert_serving(installer, serving)
    recorded = sorted(slot for slot, record in state.slots.items() if record is not None)
    assert sorted(p.name for p in (state_dir / "slots").iterdir()) == recorded
    if ends_in is not State.COMMITTED:
        assert installer.install(newer_artifact).ok  # nothing is stuck: the update goes through now
        assert_serving(installer, "1.3.0")


def test_resume_reports_the_interrupted_update(tmp_path, keypair, make_installer, digits_artifact, newer_artifact):
    state_dir = tmp_path / "agent"
    assert make_installer(state_dir).install(digits_artifact).ok
    _install_and_crash(state_dir, keypair[1], newer_artifact, State.SELF_TEST)
    installer = make_installer(state_dir)
    installer.resume()
    kind, fields = installer.recorder.events[-1]
    assert kind == "rolled_back" and fields["code"] == "interrupted" and fields["version"] == "1.3.0"
    assert fields["previous"] == "self_test"
    assert "cut short in state 'self_test'" in installer.state().last_failure.reason


def test_crash_during_the_very_first_install_leaves_a_clean_empty_device(
    tmp_path, keypair, make_installer, digits_artifact
):
    state_dir = tmp_path / "agent"
    _install_and_crash(state_dir, keypair[1], digits_artifact, State.SELF_TEST)
    installer = make_installer(state_dir)
    state = installer.resume()
    assert (state.lifecycle, state.active) == (State.ROLLED_BACK, None)
    assert installer.active_model() is None and list((state_dir / "slots").iterdir()) == []


def test_half_copied_slot_is_wiped_on_resume(
    tmp_path, keypair, make_installer, digits_artifact, newer_artifact, assert_serving
):
    state_dir = tmp_path / "agent"
    assert make_installer(state_dir).install(digits_artifact).ok
    _install_and_crash(state_dir, keypair[1], newer_artifact, State.INSTALLING)
    # what a power cut in the middle of the copy leaves: a partial temp folder and a stray slot folder
    (state_dir / "slots" / ".b.partial-x1y2").mkdir()
    (state_dir / "slots" / ".b.partial-x1y2" / "model.onnx").write_bytes(b"half a model")
    (state_dir / "slots" / "b").mkdir()
    installer = make_installer(state_dir)
    assert installer.resume().lifecycle is State.ROLLED_BACK
    assert sorted(p.name for p in (state_dir / "slots").iterdir()) == ["a"]
    assert_serving(installer, "1.2.3")
