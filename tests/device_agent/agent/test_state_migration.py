"""An agent upgraded in the field finds the five files its older version kept the update state in (schema 1
`state.json`, `agent/guard.json`, `agent/job.json`, `agent/artifacts.json`, the download's `.partial.state`):
`edgeml-agent status` reads them as they are, the first start writes the one new state file and removes them,
and an update the old agent was fetching resumes from its checkpoint."""

from __future__ import annotations

import base64
import json

from click.testing import CliRunner

from edgeml.device_agent.agent_status import read_status
from edgeml.device_agent.cli import main
from edgeml.device_agent.update.lifecycle import State
from edgeml.device_agent.update.state_store import StateStore
from edgeml.protocol import Assembler, ChunkLayout, Kind, iter_chunks
from edgeml.transport.memory_transport import MemoryTransport

DEVICE = "cam-042"
OLD_FILES = ("agent/guard.json", "agent/job.json", "agent/artifacts.json")


def _write_old_agent_files(state_dir, sequence, artifacts=None, job=None):
    """Rewrite the (new) state file as the older agent kept it, plus its side files."""
    new = json.loads((state_dir / "state.json").read_text())
    slots = {name: None if rec is None else {k: rec[k] for k in ("digest", "name", "version", "release")}
             for name, rec in new["slots"].items()}  # fmt: skip
    old_update = {"source": "/tmp/digits-1.2.3", "slot": "a", "allow_rollback": False, "started_at": 1.0,
                  "digest": slots["a"]["digest"], "name": "digits", "version": "1.2.3",
                  "release": 1_002_003}  # fmt: skip
    old = {"schema_version": 1, "lifecycle": "committed", "active": "a", "slots": slots,
           "committed_release": new["committed_release"], "update": old_update, "last_failure": None}  # fmt: skip
    (state_dir / "state.json").write_text(json.dumps(old))
    (state_dir / "agent").mkdir(exist_ok=True)
    (state_dir / "agent" / "guard.json").write_text(json.dumps({"v": 1, "last_sequence": sequence}))
    if artifacts is not None:
        entry = {"a": {"sha256": artifacts, "digest": slots["a"]["digest"]}}
        (state_dir / "agent" / "artifacts.json").write_text(json.dumps(entry))
    if job is not None:
        (state_dir / "agent" / "job.json").write_text(json.dumps({"v": 1, "desired": base64.b64encode(job).decode()}))
    return slots["a"]["digest"]


def _old_partial_download(state_dir, tar, chunks):
    """What the older agent left mid-download: `<sha>.tar.partial` and its `.partial.state` bitmap."""
    data = tar.read_bytes()
    layout = ChunkLayout.of(data, 4096)
    assembler = Assembler(state_dir / "downloads" / f"{layout.sha256}.tar", layout)
    for message in iter_chunks(data, layout, list(range(chunks))):
        assembler.add(message)
    assembler.checkpoint()
    assert assembler.state_path.is_file()
    return assembler.state_path


def test_the_first_start_merges_the_old_files_into_one(
    memory_fleet, make_config, running_agents, preinstall, digits_artifact, digits_tar, wait_until
):
    broker, fleet = memory_fleet
    config = make_config()
    preinstall(config, digits_artifact)
    ref = fleet.add(digits_tar)
    digest = _write_old_agent_files(config.state_dir, sequence=4, artifacts=ref.sha256)
    status = read_status(config)  # an older agent's folder reads as it is, before any migration
    assert (status["lifecycle"], status["desired_sequence"], status["slots"]["a"]["artifact"]) == (
        "committed", 4, ref.sha256,
    )  # fmt: skip

    agent = running_agents.start(config, MemoryTransport(broker, DEVICE))
    state = StateStore(config.state_dir).load()
    assert (state.lifecycle, state.active, state.desired_sequence) == (State.COMMITTED, "a", 4)
    assert (state.slots["a"].artifact, state.slots["a"].digest) == (ref.sha256, digest)
    assert json.loads((config.state_dir / "state.json").read_text())["schema_version"] == 2
    assert not [rel for rel in OLD_FILES if (config.state_dir / rel).exists()]
    assert agent.serving.model.sha256 == ref.sha256  # the fleet's name for the model it serves
    fleet.desire(ref, sequence=4)  # the sequence the old guard accepted: still a duplicate
    fleet.desire(ref, sequence=5)
    assert "already active" in fleet.event("committed").reason
    assert fleet.next(Kind.STATUS, where=lambda s: s.desired_sequence == 5).slots["a"].sha256 == ref.sha256


def test_a_download_the_old_agent_had_under_way_resumes_from_its_checkpoint(
    memory_fleet, make_config, agent_env, running_agents, preinstall, digits_artifact, newer_tar, wait_until
):
    broker, fleet = memory_fleet
    config = make_config()
    preinstall(config, digits_artifact)
    ref = fleet.add(newer_tar)
    payload = fleet.desire(ref, sequence=9, publish=False)
    _write_old_agent_files(config.state_dir, sequence=9, job=payload)
    old_checkpoint = _old_partial_download(config.state_dir, newer_tar, chunks=10)
    result = CliRunner().invoke(main, ["status", "--json"], env=agent_env(config))
    update = json.loads(result.stdout)["update"]
    assert (update["state"], update["received"], update["chunks"]) == ("accepted", 10, ref.chunk_count)

    agent = running_agents.start(config, MemoryTransport(broker, DEVICE))
    assert not old_checkpoint.exists() and not (config.state_dir / "agent" / "job.json").exists()
    started = fleet.event("download_started")
    assert f"10/{ref.chunk_count} chunks already here" in started.reason
    assert fleet.event("committed").artifact == ref.sha256
    wait_until(lambda: agent.serving and agent.serving.model.version == "1.3.0")
    assert min(i for r in fleet.requests for i in r.indices()) == 10  # the first ten were not asked for again
