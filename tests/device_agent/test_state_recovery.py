"""The persisted state: atomic writes, and what resume() does when the state file or the active slot is damaged."""

from __future__ import annotations

import json
import os

import pytest

from edgeml.device_agent.update.agent_state import AgentState, SlotRecord
from edgeml.device_agent.update.lifecycle import State
from edgeml.device_agent.update.state_store import StateFileError, StateStore


def _two_releases(state_dir, make_installer, digits_artifact, newer_artifact):
    installer = make_installer(state_dir)
    assert installer.install(digits_artifact).ok and installer.install(newer_artifact).ok
    return installer


def test_state_round_trips_and_leaves_no_temp_file(tmp_path):
    store = StateStore(tmp_path)
    state = AgentState(lifecycle=State.COMMITTED, active="b", committed_release=7).with_slot(
        "b", SlotRecord("ab" * 32, "digits", "0.0.7", 7)
    )
    store.save(state)
    assert store.load() == state
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]
    assert StateStore(tmp_path / "new-device").load() is None


def test_a_failed_write_keeps_the_previous_state(tmp_path, monkeypatch):
    store = StateStore(tmp_path)
    store.save(AgentState(committed_release=1))

    def no_space(*args):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", no_space)
    with pytest.raises(StateFileError, match="cannot write agent state") as info:
        store.save(AgentState(committed_release=2))
    assert "previous state is still in place" in info.value.hint
    monkeypatch.undo()
    assert store.load().committed_release == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["state.json"]


def test_one_agent_process_per_state_folder(tmp_path):
    store = StateStore(tmp_path)
    with store.lock(), pytest.raises(StateFileError, match="another agent process"), StateStore(tmp_path).lock():
        pass


IN_PROGRESS_WITHOUT_UPDATE = (
    b'{"schema_version": 2, "lifecycle": "installing", "active": null, "slots": {"a": null, "b": null}, '
    b'"committed_release": null, "update": null, "last_failure": null, "desired_sequence": 7}'
)
OLD_AGENT_IN_PROGRESS_WITHOUT_UPDATE = (
    b'{"schema_version": 1, "lifecycle": "installing", "active": null, "slots": {"a": null, "b": null}, '
    b'"committed_release": null, "update": null, "last_failure": null}'
)


@pytest.mark.parametrize(
    "damage",
    [
        b"\x00\x17garbage{",
        b'{"schema_version": 2, "lifecycle": "flying"}',
        IN_PROGRESS_WITHOUT_UPDATE,
        OLD_AGENT_IN_PROGRESS_WITHOUT_UPDATE,
    ],
)
def test_corrupt_state_is_set_aside_and_rebuilt_from_the_slots(
    tmp_path, make_installer, digits_artifact, newer_artifact, assert_serving, damage
):
    state_dir = tmp_path / "agent"
    _two_releases(state_dir, make_installer, digits_artifact, newer_artifact)
    (state_dir / "state.json").write_bytes(damage)
    (state_dir / ".state.json.4242.tmp").write_bytes(b'{"half a wri')  # a write the power cut interrupted
    installer = make_installer(state_dir)
    with pytest.raises(StateFileError, match="is corrupt") as info:
        installer.state()
    assert "resume()" in info.value.hint
    state = installer.resume()
    assert (state.lifecycle, state.active, state.committed_release) == (State.IDLE, "b", 1_003_000)
    assert state.slots["a"].version == "1.2.3"  # the fallback proved itself too and is kept
    assert state.last_failure.code == "state_rebuilt"
    salvaged = 7 if b'"desired_sequence": 7' in damage else 0  # what could still be read of the damaged file
    assert state.desired_sequence == salvaged and ("sequence was lost" in state.last_failure.reason) == (not salvaged)
    assert [p.read_bytes() for p in state_dir.glob("state.json.corrupt-*")] == [damage]
    assert not list(state_dir.glob(".state.json.*.tmp"))
    assert installer.recorder.kinds == ["state_rebuilt"]
    assert_serving(installer, "1.3.0")


def test_lost_state_file_is_rebuilt_and_an_unproven_slot_dropped(
    tmp_path, make_installer, digits_artifact, newer_artifact, assert_serving
):
    state_dir = tmp_path / "agent"
    _two_releases(state_dir, make_installer, digits_artifact, newer_artifact)
    (state_dir / "state.json").unlink()
    (state_dir / "slots" / "b" / "self_test.npz").write_bytes(b"rotten")  # slot b no longer verifies
    installer = make_installer(state_dir)
    state = installer.resume()
    assert (state.active, state.slots["b"], state.committed_release) == ("a", None, 1_002_003)
    assert not (state_dir / "slots" / "b").exists()
    assert_serving(installer, "1.2.3")


def test_active_slot_damaged_on_disk_falls_back_to_the_other(
    tmp_path, make_installer, digits_artifact, newer_artifact, assert_serving
):
    state_dir = tmp_path / "agent"
    _two_releases(state_dir, make_installer, digits_artifact, newer_artifact)
    model = state_dir / "slots" / "b" / "model.onnx"
    model.write_bytes(model.read_bytes()[:-10])
    installer = make_installer(state_dir)
    state = installer.resume()
    assert (state.active, state.slots["b"], state.last_failure.code) == ("a", None, "active_corrupt")
    assert state.committed_release == 1_003_000
    assert installer.recorder.events[-1][0] == "active_fallback"
    assert_serving(installer, "1.2.3")


def test_resume_on_a_healthy_device_changes_nothing(
    tmp_path, make_installer, digits_artifact, newer_artifact, assert_serving
):
    state_dir = tmp_path / "agent"
    before = _two_releases(state_dir, make_installer, digits_artifact, newer_artifact).state()
    raw = json.loads((state_dir / "state.json").read_text())
    installer = make_installer(state_dir)
    assert installer.resume() == before
    assert json.loads((state_dir / "state.json").read_text()) == raw and installer.recorder.events == []
    assert_serving(installer, "1.3.0")
