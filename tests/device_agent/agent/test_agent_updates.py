"""The agent's update side against the in-memory transport: desired state → chunks → install → events and
status; every refusal leaves the serving model alone and says why. (test_agent_broker.py repeats the
main paths against a real Mosquitto.)"""

from __future__ import annotations

import dataclasses
import json
import threading

import numpy as np

from edgeml.artifact import create_keypair, load_private_key, pack
from edgeml.errors import EdgemlError
from edgeml.protocol import Kind, bench_topic, desired_topic
from edgeml.transport.memory_transport import MemoryTransport

DEVICE = "cam-042"
X = np.zeros((1, 1, 8, 8), np.float32)
UPDATE_EVENTS = ["download_started", "downloaded", "verified", "installed", "committed"]


def _events(fleet, n, timeout=10.0):
    return [fleet.next(Kind.EVENT, timeout) for _ in range(n)]


def test_a_desired_state_is_downloaded_installed_and_reported(memory_fleet, make_config, running_agents, digits_tar):
    broker, fleet = memory_fleet
    transport = MemoryTransport(broker, DEVICE)
    agent = running_agents.start(make_config(), transport)
    hello = fleet.next(Kind.HELLO)
    assert (hello.device_id, hello.target, hello.current) == (DEVICE, "cpu-ort", None)
    assert "onnxruntime" in hello.runtimes
    assert transport.topic_filters == [desired_topic(DEVICE), bench_topic(DEVICE)]  # no chunk stream while idle
    ref = fleet.add(digits_tar)
    fleet.desire(ref)
    events = _events(fleet, 5)
    assert [e.kind for e in events] == UPDATE_EVENTS
    assert all(e.ok and e.artifact == ref.sha256 and e.release == ref.release for e in events)
    assert [e.seq for e in events] == sorted(e.seq for e in events)
    status = fleet.next(Kind.STATUS, where=lambda s: s.active == "a")
    assert status.online and status.state == "committed" and status.desired_sequence == 1
    assert status.slots["a"].sha256 == ref.sha256 and status.version == "1.2.3"
    assert all(sum(b - a for a, b in r.missing) <= 32 for r in fleet.requests)  # windowed requests
    assert agent.predict({"input": X})["logits"].shape == (1, 10)
    assert not list((agent.config.state_dir / "downloads").iterdir())  # the download is cleaned up
    assert transport.topic_filters == [desired_topic(DEVICE), bench_topic(DEVICE)]  # left the chunk stream


def test_predict_keeps_serving_while_an_update_installs(
    memory_fleet, make_config, running_agents, preinstall, digits_artifact, newer_tar, wait_until
):
    broker, fleet = memory_fleet
    config = make_config()
    preinstall(config, digits_artifact)
    agent = running_agents.start(config, MemoryTransport(broker, DEVICE))
    versions, errors, done = [], [], threading.Event()

    def hammer():
        while not done.is_set():
            try:
                agent.predict({"input": X})
                versions.append(agent.serving.model.version)
            except EdgemlError as exc:
                errors.append(exc)

    thread = threading.Thread(target=hammer)
    thread.start()
    fleet.desire(fleet.add(newer_tar))
    fleet.event("committed")
    wait_until(lambda: versions and versions[-1] == "1.3.0")
    done.set()
    thread.join()
    assert not errors and versions[0] == "1.2.3" and len(versions) > 100


def test_the_artifact_already_active_is_a_no_op(memory_fleet, make_config, running_agents, digits_tar):
    broker, fleet = memory_fleet
    running_agents.start(make_config(), MemoryTransport(broker, DEVICE))
    ref = fleet.add(digits_tar)
    fleet.desire(ref)
    fleet.event("committed")
    requests = len(fleet.requests)
    fleet.desire(ref)  # sequence 2, same artifact
    again = fleet.next(Kind.EVENT)
    assert (again.kind, again.ok, again.artifact) == ("committed", True, ref.sha256)
    assert "already active" in again.reason and len(fleet.requests) == requests
    assert fleet.next(Kind.STATUS, where=lambda s: s.desired_sequence == 2).active == "a"


def test_a_fleet_revert_reactivates_the_other_slot_without_downloading(
    memory_fleet, make_config, running_agents, digits_tar, newer_tar, wait_until
):
    broker, fleet = memory_fleet
    agent = running_agents.start(make_config(), MemoryTransport(broker, DEVICE))
    old, new = fleet.add(digits_tar), fleet.add(newer_tar)
    fleet.desire(old)
    fleet.event("committed")
    fleet.desire(new)
    fleet.event("committed")
    requests = len(fleet.requests)
    fleet.desire(old, allow_rollback=True)
    reused = fleet.event("downloaded")
    assert "reused from slot a" in reused.reason
    assert fleet.event("committed").release == old.release
    wait_until(lambda: agent.serving.model.version == "1.2.3")
    assert len(fleet.requests) == requests and agent.serving.model.sha256 == old.sha256


def test_bad_desired_states_are_rejected_with_a_reason_and_change_nothing(
    memory_fleet, make_config, running_agents, preinstall, digits_artifact, newer_tar, tmp_path
):
    broker, fleet = memory_fleet
    config = make_config()
    preinstall(config, digits_artifact)
    transport = MemoryTransport(broker, DEVICE)
    agent = running_agents.start(config, transport)
    fleet.next(Kind.HELLO)
    ref = fleet.add(newer_tar)
    topic = desired_topic(DEVICE)

    def rejected(code):
        event = fleet.event("desired_rejected")
        assert event.reason.startswith(f"[{code}]") and not event.ok, event
        return event

    fleet.transport.publish(topic, b"\xff{not json", retain=True)
    rejected("malformed")
    body = json.loads(fleet.desire(ref, sequence=7, publish=False))
    body["rollout_id"] = "rollout-evil"
    fleet.transport.publish(topic, json.dumps(body).encode(), retain=True)
    rejected("bad_signature")
    other_key = create_keypair(tmp_path / "other-key")[0]
    fleet.desire(ref, sequence=8, key=load_private_key(other_key))
    rejected("wrong_key")
    fleet.desire(ref, sequence=9, device="cam-043")
    rejected("wrong_device")
    assert agent.serving.model.version == "1.2.3"  # nothing above changed the device
    stale = fleet.desire(ref, sequence=10)
    fleet.event("committed")
    fleet.desire(ref, sequence=11)
    fleet.event("committed")  # no-op: already active
    fleet.transport.publish(topic, stale, retain=True)  # a replay of an older, validly signed message
    event = rejected("stale")
    assert event.artifact == ref.sha256  # the signed fields name the update it came from
    assert transport.handler_errors == 0 and agent.predict({"input": X})


def test_wrong_target_and_older_release_are_refused_before_downloading(
    memory_fleet, make_config, running_agents, preinstall, newer_artifact, digits_tar
):
    broker, fleet = memory_fleet
    config = make_config()
    preinstall(config, newer_artifact)
    agent = running_agents.start(config, MemoryTransport(broker, DEVICE))
    ref = fleet.add(digits_tar)
    fleet.desire(dataclasses.replace(ref, target="npu-openvino", release=2_000_000))
    event = fleet.event("refused")  # accepted, then refused: the fleet closes the deployment as failed
    assert event.reason.startswith("[wrong_target]") and "npu-openvino" in event.reason
    assert event.release == 2_000_000 and event.rollout_id == "rollout-1" and event.step == "accepted"
    assert fleet.next(Kind.STATUS, where=lambda s: s.state == "refused").desired_sequence == 1
    fleet.desire(ref)  # release 1.2.3 < the committed 1.3.0, no rollback signed
    assert fleet.event("desired_rejected").reason.startswith("[rollback_refused]")
    assert not fleet.requests and agent.serving.model.version == "1.3.0"


def test_an_artifact_built_for_another_target_is_refused_after_verification(
    memory_fleet, make_config, running_agents, preinstall, digits_artifact, newer_artifact, resign, tmp_path
):
    broker, fleet = memory_fleet
    config = make_config()
    preinstall(config, digits_artifact)
    agent = running_agents.start(config, MemoryTransport(broker, DEVICE))

    def other_target(manifest):
        manifest["target"]["id"] = "npu-openvino"

    tar = pack(resign(newer_artifact, edit=other_target), tmp_path / "digits-1.3.0.tar")
    fleet.desire(fleet.add(tar))
    event = fleet.event("refused")
    assert event.reason.startswith("[wrong_target]") and event.release == 1_003_000 and event.step == "verifying"
    assert agent.serving.model.version == "1.2.3" and agent.predict({"input": X})


def test_a_restarted_agent_resumes_its_download(memory_fleet, make_config, running_agents, digits_tar, wait_until):
    broker, fleet = memory_fleet
    config = make_config()
    fleet.damage = lambda index, message: message if index < 10 else None  # the fleet goes quiet after 10
    first = running_agents.start(config, MemoryTransport(broker, DEVICE))
    ref = fleet.add(digits_tar)
    fleet.desire(ref)
    assert fleet.event("download_started").reason == f"digits 1.2.3: {ref.chunk_count} chunks"
    wait_until(lambda: first.worker.progress() and first.worker.progress()["received"] >= 10)
    first.stop()
    fleet.damage = None
    second = running_agents.start(config, MemoryTransport(broker, DEVICE))  # gets the retained desired: a duplicate
    started = fleet.event("download_started")
    assert f"10/{ref.chunk_count} chunks already here" in started.reason
    assert fleet.event("committed").artifact == ref.sha256
    wait_until(lambda: second.serving and second.serving.model.version == "1.2.3")


def test_a_newer_desired_state_replaces_a_download_under_way(
    memory_fleet, make_config, running_agents, preinstall, digits_artifact, digits_tar, newer_tar, wait_until
):
    broker, fleet = memory_fleet
    config = make_config()
    preinstall(config, digits_artifact)
    transport = MemoryTransport(broker, DEVICE)
    agent = running_agents.start(config, transport)
    fleet.answering.clear()  # the fleet is slow: the download stays under way
    fleet.desire(fleet.add(newer_tar))
    fleet.event("download_started")
    assert agent.installer.state().lifecycle.value == "downloading" and len(transport.topic_filters) == 3
    back = fleet.add(digits_tar)
    fleet.desire(back)  # the operator reverts to what the device runs: downloading ─accept→ accepted → committed
    assert "already active" in fleet.event("committed").reason
    wait_until(lambda: transport.topic_filters == [desired_topic(DEVICE), bench_topic(DEVICE)])  # left the stream
    state = agent.installer.state()
    assert (state.lifecycle.value, state.desired_sequence, state.slots["a"].artifact) == ("committed", 2, back.sha256)
    assert not list((config.state_dir / "downloads").glob("*")) and agent.serving.model.version == "1.2.3"


def test_a_reverted_release_is_superseded_by_a_lower_hotfix_under_the_floor_the_fleet_signs(
    memory_fleet, make_config, running_agents, digits_tar, newer_tar, hotfix_tar, wait_until
):
    broker, fleet = memory_fleet
    agent = running_agents.start(make_config(), MemoryTransport(broker, DEVICE))
    old, new, hotfix = fleet.add(digits_tar), fleet.add(newer_tar), fleet.add(hotfix_tar)
    fleet.desire(old)
    fleet.event("committed")
    fleet.desire(new, min_release=old.release)  # 1.3.0 goes out; 1.2.3 is the release the fleet declared good
    fleet.event("committed")
    fleet.desire(old, allow_rollback=True, min_release=old.release)  # 1.3.0 aborted: reverted
    fleet.event("committed")
    replay = fleet.desire(new, min_release=old.release, publish=False)
    fleet.desire(hotfix, min_release=old.release)  # 1.2.4: below the committed 1.3.0, above the signed floor
    assert fleet.event("committed").release == hotfix.release
    wait_until(lambda: agent.serving.model.version == "1.2.4")
    fleet.desire(old, min_release=hotfix.release)  # below the floor the fleet signs: refused, and it says why
    refused = fleet.event("desired_rejected")
    assert refused.reason.startswith("[rollback_refused]"), refused.reason
    assert f"below the anti-rollback floor {hotfix.release}" in refused.reason
    assert "the fleet signed as min_release in desired state 6" in refused.reason
    fleet.transport.publish(desired_topic(DEVICE), replay, retain=True)  # an old, validly signed message
    assert fleet.event("desired_rejected").reason.startswith("[stale]")
    assert agent.serving.model.version == "1.2.4"


def test_without_a_signed_floor_the_refusal_names_the_devices_own(
    memory_fleet, make_config, running_agents, digits_tar, newer_tar
):
    broker, fleet = memory_fleet
    running_agents.start(make_config(), MemoryTransport(broker, DEVICE))
    old, new = fleet.add(digits_tar), fleet.add(newer_tar)
    fleet.desire(new)
    fleet.event("committed")
    fleet.desire(old)  # an older fleet: no min_release, no rollback signed
    reason = fleet.event("desired_rejected").reason
    assert f"below the anti-rollback floor {new.release}: the highest release committed on this device" in reason
