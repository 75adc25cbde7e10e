"""Power cuts on a whole agent: a real agent process, fed a desired state by the fleet, dies right after each
state of the update table is persisted (EDGEML_AGENT_CRASH_AT=<state> makes it `os._exit(137)`, as a kill -9
would, before the state's step runs). A new agent on the same state folder then starts while the fleet's
retained desired state is still there (a duplicate by now) and must end the update correctly: an update that
waits on the fleet (accepted, downloading) is carried on to its commit; a step the cut interrupted on the
device ends `interrupted` (refused before the slot was touched, rolled back after); a finished one stays.
Either way the active slot holds a model that verifies and loads, and nothing is left in `downloads/`."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys

import numpy as np
import pytest

from edgeml.artifact import pack
from edgeml.artifact.npz import npz_bytes
from edgeml.device_agent.update.crash_hook import CRASH_ENV
from edgeml.device_agent.update.lifecycle import FINAL, State
from edgeml.protocol import desired_topic
from edgeml.transport.memory_transport import MemoryTransport

DEVICE = "cam-042"
CHILD = """
import sys, time
from pathlib import Path
from edgeml.device_agent import Agent
from edgeml.protocol import ChunkLayout, Kind, artifact_chunks_topic, chunk_request_topic, decode, desired_topic
from edgeml.protocol import iter_chunks
from edgeml.transport.memory_transport import MemoryBroker, MemoryTransport

device, tar, desired = sys.argv[1:4]
data = Path(tar).read_bytes()
layout = ChunkLayout.of(data, 4096)
broker = MemoryBroker()
fleet = MemoryTransport(broker, "fleet")
fleet.connect()

def answer(topic, payload):
    indices = decode(Kind.CHUNK_REQUEST, payload).indices()
    for message in iter_chunks(data, layout, indices):
        fleet.publish(artifact_chunks_topic(layout.sha256), message)

fleet.subscribe(chunk_request_topic(device), answer)
fleet.publish(desired_topic(device), Path(desired).read_bytes(), retain=True)
Agent.from_config(None, MemoryTransport(broker, device)).start()
time.sleep(60)
raise SystemExit("the update ended without reaching the crash point")
"""


def _crash_agent(env, tar, payload, state, tmp_path):
    desired = tmp_path / "desired.bin"
    desired.write_bytes(payload)
    env = {**os.environ, **env, CRASH_ENV: state.value}
    cmd = [sys.executable, "-c", CHILD, DEVICE, str(tar), str(desired)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 137, f"expected a crash at {state.value}, got rc {proc.returncode}\n{proc.stderr}"


def _mismatching_tar(artifact, resign, tmp_path):
    with np.load(artifact / "self_test.npz") as z:
        arrays = {k: z[k] for k in z.files}
    arrays["expected/logits"] = -arrays["expected/logits"]
    return pack(resign(artifact, files={"self_test.npz": npz_bytes(arrays)}), tmp_path / "digits-1.3.0.tar")


@pytest.mark.parametrize(
    ("crash_at", "serving", "ends_in", "code"),
    [
        (State.ACCEPTED, "1.3.0", State.COMMITTED, None),  # carried on: decided again, downloaded, installed
        (State.DOWNLOADING, "1.3.0", State.COMMITTED, None),  # carried on: the download resumes
        (State.VERIFYING, "1.2.3", State.REFUSED, "interrupted"),
        (State.INSTALLING, "1.2.3", State.ROLLED_BACK, "interrupted"),
        (State.SELF_TEST, "1.2.3", State.ROLLED_BACK, "interrupted"),
        (State.COMMITTED, "1.3.0", State.COMMITTED, None),
        (State.ROLLED_BACK, "1.2.3", State.ROLLED_BACK, "self_test_mismatch"),
        (State.REFUSED, "1.2.3", State.REFUSED, "wrong_target"),
    ],
)
def test_an_agent_killed_in_each_state_ends_its_update_after_a_restart(
    memory_fleet, make_config, agent_env, running_agents, preinstall, digits_artifact, newer_artifact, newer_tar,
    resign, assert_serving, wait_until, tmp_path, crash_at, serving, ends_in, code,
):  # fmt: skip
    broker, fleet = memory_fleet
    config = make_config()
    preinstall(config, digits_artifact)
    tar = _mismatching_tar(newer_artifact, resign, tmp_path) if crash_at is State.ROLLED_BACK else newer_tar
    ref = fleet.add(tar)
    if crash_at is State.REFUSED:
        ref = dataclasses.replace(ref, target="npu-openvino")
    payload = fleet.desire(ref, publish=False)
    _crash_agent(agent_env(config), tar, payload, crash_at, tmp_path)
    assert config.state_dir.joinpath("state.json").is_file()

    fleet.transport.publish(desired_topic(DEVICE), payload, retain=True)  # still retained: now a duplicate
    agent = running_agents.start(config, MemoryTransport(broker, DEVICE))
    state = wait_until(lambda: (s := agent.installer.state()).lifecycle in FINAL and s, timeout=30)
    assert (state.lifecycle, state.last_failure.code if code else None) == (ends_in, code)
    assert state.desired_sequence == 1 and state.update.artifact == ref.sha256
    wait_until(lambda: agent.serving and agent.serving.model.version == serving)
    assert_serving(agent.installer, serving)
    recorded = sorted(slot for slot, record in state.slots.items() if record is not None)
    assert sorted(p.name for p in (config.state_dir / "slots").iterdir()) == recorded
    assert not list((config.state_dir / "downloads").glob("*"))
    if crash_at in (State.ACCEPTED, State.DOWNLOADING):
        assert fleet.event("committed", timeout=30).artifact == ref.sha256


def test_a_restarted_agent_reports_the_interrupted_update(
    memory_fleet, make_config, agent_env, running_agents, preinstall, digits_artifact, newer_tar, tmp_path
):
    broker, fleet = memory_fleet
    config = make_config()
    preinstall(config, digits_artifact)
    ref = fleet.add(newer_tar)
    payload = fleet.desire(ref, publish=False)
    _crash_agent(agent_env(config), newer_tar, payload, State.INSTALLING, tmp_path)
    running_agents.start(config, MemoryTransport(broker, DEVICE))
    event = fleet.event("rolled_back")
    assert event.reason.startswith("[interrupted]") and "cut short in state 'installing'" in event.reason
    assert (event.step, event.artifact, event.rollout_id) == ("installing", ref.sha256, "rollout-1")
