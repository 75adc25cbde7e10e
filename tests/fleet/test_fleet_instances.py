"""Several `fleet serve` instances on one fleet, through the real CLI, on a real PostgreSQL and a real Mosquitto:
one leads; kill -9 the leader mid-wave and the other takes over and finishes the rollout with every device
converged, no execution moved twice, no event lost. And a second instance that may not run is refused."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from edgeml.artifact import load_private_key, load_public_key
from edgeml.fleet import Fleet, RolloutPlan
from edgeml.fleet.instance_lease import LEADER
from edgeml.fleet.simulated_device import SimulatedDevice
from edgeml.transport.mqtt_transport import MqttTransport

pytestmark = [pytest.mark.postgres, pytest.mark.broker]
ROOT = Path(__file__).resolve().parents[2]
TAKEOVER_S = 5.0  # the lease promises poll (1 s) + one tick (0.5 s); the rest is this loaded 2-core machine
MOVE = re.compile(r"execution (r-\w+)/(\S+): (\w+) → (\w+)")


class Instance:
    """One `edgeml -v fleet serve` process, its output in a log file."""

    def __init__(self, tmp_path: Path, name: str, db: str, keypair, broker_url: str, *extra: str) -> None:
        self.log = tmp_path / f"{name}.log"
        args = ["-v", "fleet", "serve", "--db", db, "--store", str(tmp_path / "store"), "--key", str(keypair[0])]
        args += ["--broker", broker_url, "--chunk-size", "8192", *extra]
        env = os.environ | {"PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
        with open(self.log, "wb") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-c", "from edgeml.cli import main; main()", *args],
                stdout=out, stderr=subprocess.STDOUT, env=env,
            )  # fmt: skip

    @property
    def text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_serving(self, timeout: float = 30.0) -> None:
        wait_until(lambda: "fleet serving on" in self.text or self.proc.poll() is not None, timeout)
        assert self.proc.poll() is None, self.text

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def wait_until(condition, timeout: float = 30.0, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := condition():
            return value
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s")


def leader_pid(db: Fleet) -> int | None:
    """The OS pid of the instance holding the lease (its lease connection names it), or None."""
    from edgeml.fleet.postgres_database import lock_namespace

    conn = db.db._connection()
    rows = db.db.query(
        "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid WHERE l.locktype = "
        "'advisory' AND l.classid::bigint = ? AND l.objid::bigint = ? AND l.objsubid = 2 AND l.granted",
        (lock_namespace(conn), LEADER),
    )
    return int(rows[0][0].rsplit(" pid ", 1)[1]) if rows else None


def start_devices(url: str, keypair, n: int) -> list[SimulatedDevice]:
    devices = []
    for i in range(n):
        d = SimulatedDevice(f"cam-{i:02d}", "cpu-ort", None, load_public_key(keypair[1]), seed=i)
        d.transport = MqttTransport(url, d.device_id, will=d.will())
        d.start()
        devices.append(d)
    return devices


def drive(fleet: Fleet, devices, rollout_id: str, until, timeout: float = 120.0) -> dict:
    """Keep the devices asking for what they miss until `until(status)` holds; the last status."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for d in devices:
            d.poll(quiet_s=1.0)
        status = fleet.rollouts.status(rollout_id)
        if until(status):
            return status
        time.sleep(0.2)
    raise AssertionError(f"rollout did not get there: {fleet.rollouts.status(rollout_id)}")


def settled(status: dict) -> bool:
    return status["state"] in ("completed", "aborted") and not any(
        e["state"] in ("pending", "in_progress", "reverting") for e in status["executions"]
    )


@pytest.fixture
def fleet(tmp_path, keypair, postgres_url):
    f = Fleet(postgres_url, tmp_path / "store", load_private_key(keypair[0]))
    yield f
    f.db.close()


@pytest.mark.chaos
def test_the_leader_killed_mid_wave_the_other_finishes_the_rollout_once(tmp_path, keypair, broker, fleet, releases):
    url = fleet.db.url
    instances = [Instance(tmp_path, f"fleet-{i}", url, keypair, broker.url, "--share-group", "g") for i in range(2)]
    devices = []
    try:
        for instance in instances:
            instance.wait_serving()
        first = wait_until(lambda: leader_pid(fleet))
        devices = start_devices(broker.url, keypair, 20)
        wait_until(lambda: len(fleet.devices.select()) == 20)
        sha = fleet.artifacts.publish(releases["1.2.3"], time.time())["sha256"]
        plan = RolloutPlan.build("10%", "50%,100%", "2s", "60s", ["install_success>=1.0"])
        rollout = fleet.rollouts.create("digits@1.2.3", "all", plan, time.time())["id"]

        mid_wave = drive(fleet, devices, rollout, lambda s: s["wave"] >= 1)  # the canary passed; wave 1 runs
        os.kill(first, signal.SIGKILL)
        killed_at = time.monotonic()
        second = wait_until(lambda: (p := leader_pid(fleet)) not in (None, first) and p, timeout=30, every=0.05)
        takeover_s = time.monotonic() - killed_at
        final = drive(fleet, devices, rollout, settled)
    finally:
        for d in devices:
            d.transport.close()
        for instance in instances:
            instance.stop()

    logs = "".join(i.text for i in instances)
    print(f"\ntakeover {takeover_s:.2f} s; killed at wave {mid_wave['wave']}; leader pid {first} → {second}")
    assert takeover_s < TAKEOVER_S, takeover_s
    assert second in {i.proc.pid for i in instances} and first != second
    assert final["state"] == "completed", final
    assert [e["state"] for e in final["executions"]] == ["succeeded"] * 20, final["executions"]
    assert all(d.current is not None and d.current.sha256 == sha for d in devices)
    assert sum(d.corrupt_installs for d in devices) == 0
    # nothing done twice: each device was sent one desired state, and no instance logged a move twice
    assert {r[0] for r in fleet.db.query("SELECT sequence FROM desired")} == {1}
    assert {d.guard_state["last_sequence"] for d in devices} == {1}
    moves = Counter(MOVE.findall(logs))
    assert moves and max(moves.values()) == 1, [m for m, n in moves.items() if n > 1]
    # nothing lost: every device's `committed` event is recorded, once
    committed = fleet.db.query("SELECT device_id, COUNT(*) FROM events WHERE kind = 'committed' GROUP BY device_id")
    assert sorted(tuple(r) for r in committed) == [(d.device_id, 1) for d in devices]


def test_a_second_instance_without_the_share_group_is_refused_and_told_why(tmp_path, keypair, broker, fleet):
    url = fleet.db.url
    first = Instance(tmp_path, "solo", url, keypair, broker.url)
    try:
        first.wait_serving()
        alone = Instance(tmp_path, "second", url, keypair, broker.url)
        grouped = Instance(tmp_path, "grouped", url, keypair, broker.url, "--share-group", "g")
        assert alone.proc.wait(timeout=30) != 0 and grouped.proc.wait(timeout=30) != 0
    finally:
        first.stop()
    assert "already served by edgeml-fleet lease group=- " in alone.text
    assert f"pid {first.proc.pid}" in alone.text and "--share-group NAME" in alone.text
    assert "start every instance with the same --share-group g" in grouped.text


def test_a_second_instance_on_one_sqlite_file_is_refused(tmp_path, keypair, broker):
    db = str(tmp_path / "fleet.sqlite")
    first = Instance(tmp_path, "first", db, keypair, broker.url)
    try:
        first.wait_serving()
        second = Instance(tmp_path, "second", db, keypair, broker.url)
        grouped = Instance(
            tmp_path, "grouped", str(tmp_path / "other.sqlite"), keypair, broker.url, "--share-group", "g"
        )
        assert second.proc.wait(timeout=30) != 0 and grouped.proc.wait(timeout=30) != 0
    finally:
        first.stop()
    assert f"is already served by fleet serve pid {first.proc.pid}" in second.text
    assert "SQLite takes one `fleet serve` at a time" in second.text
    assert "--share-group runs several instances on one fleet" in grouped.text and "PostgreSQL" in grouped.text
