"""`edgeml fleet rollout status` and `list` as they read in a terminal and in a log: the status line without a
dangling dash, `--watch` into a pipe printing only what changed, and artifacts named `name@version`."""

from __future__ import annotations

import json
import time

import pytest
from click.testing import CliRunner

from edgeml.cli import main
from edgeml.protocol import Hello, ModelRef, Status


@pytest.fixture
def setup(tmp_path, keypair, releases):
    """A fleet database with five cpu-ort devices and digits@1.2.3 published; (fleet, run `edgeml fleet …`)."""
    from edgeml.artifact import load_private_key
    from edgeml.fleet import Fleet

    fleet = Fleet(tmp_path / "fleet.sqlite", tmp_path / "store", load_private_key(keypair[0]))
    for i in range(5):
        fleet.devices.on_hello(Hello(f"cam-{i:02d}", "cpu-ort", "0.1.0", 1 << 30, {}), time.time())
    fleet.artifacts.publish(releases["1.2.3"], time.time())
    common = ["--db", str(tmp_path / "fleet.sqlite"), "--store", str(tmp_path / "store"), "--key", str(keypair[0])]

    def run(*args: str):
        result = CliRunner().invoke(main, ["fleet", *args, *common])
        assert result.exit_code == 0, result.output
        return result.output

    yield fleet, run
    fleet.db.close()


def create(run) -> str:
    return json.loads(run("rollout", "create", "digits@1.2.3", "--to", "all", "--canary", "20%", "--json"))["id"]


def test_the_status_line_has_no_dangling_dash(setup):
    fleet, run = setup
    rid = create(run)
    headline = run("rollout", "status", rid).splitlines()[0]
    assert headline == f"{rid} digits@1.2.3 running — canary not exposed yet"
    fleet.rollouts.tick(time.time())
    assert run("rollout", "status", rid).splitlines()[0] == f"{rid} digits@1.2.3 running — wave 0"
    fleet.rollouts.abort(rid, "CI job 42 failed", time.time())
    assert run("rollout", "status", rid).splitlines()[0] == f"{rid} digits@1.2.3 aborted — wave 0 — CI job 42 failed"


def test_watch_into_a_pipe_prints_only_when_the_rollout_changes(setup, monkeypatch):
    fleet, run = setup
    rid = create(run)
    steps = iter([None, None, "tick", None, None, "abort"])  # what happens during each 2 s wait

    def wait(seconds: float) -> None:
        step = next(steps)
        if step == "tick":
            fleet.rollouts.tick(time.time())
        elif step == "abort":
            fleet.rollouts.abort(rid, "aborted by the operator", time.time())

    monkeypatch.setattr("edgeml.cli.fleet_rollout_cmd.time.sleep", wait)
    headlines = [line for line in run("rollout", "status", rid, "--watch").splitlines() if line.startswith(rid)]
    assert headlines == [
        f"{rid} digits@1.2.3 running — canary not exposed yet",
        f"{rid} digits@1.2.3 running — wave 0",
        f"{rid} digits@1.2.3 aborted — wave 0 — aborted by the operator",
    ]
    assert next(steps, "all used") == "all used"


def test_watch_with_json_prints_one_document_per_change(setup, monkeypatch):
    fleet, run = setup
    rid = create(run)
    monkeypatch.setattr("edgeml.cli.fleet_rollout_cmd.time.sleep", abort_on_second_wait(fleet, rid))
    decoder, out, docs = json.JSONDecoder(), run("rollout", "status", rid, "--watch", "--json"), []
    while out.strip():
        doc, end = decoder.raw_decode(out.strip())
        docs.append(doc["state"])
        out = out.strip()[end:]
    assert docs == ["running", "aborted"]


def test_watch_on_a_terminal_redraws_in_place_until_the_end(setup, monkeypatch):
    from edgeml.cli.output import console

    fleet, run = setup
    rid = create(run)
    monkeypatch.setattr(console, "_force_terminal", True)
    monkeypatch.setattr("edgeml.cli.fleet_rollout_cmd.time.sleep", abort_on_second_wait(fleet, rid))
    out = run("rollout", "status", rid, "--watch")
    assert "aborted" in out and "\x1b[" in out  # cursor movement: one display, redrawn


def abort_on_second_wait(fleet, rollout_id: str):
    waits = iter([False, True])

    def wait(seconds: float) -> None:
        if next(waits):
            fleet.rollouts.abort(rollout_id, "stop", time.time())

    return wait


def test_rollout_list_names_the_artifact(setup):
    _, run = setup
    rid = create(run)
    table = run("rollout", "list")
    row = next(line for line in table.splitlines() if rid in line)
    assert "digits@1.2.3" in row and "…" not in row
    listed = json.loads(run("rollout", "list", "--json"))
    assert [(r["id"], r["artifact"]) for r in listed] == [(rid, "digits@1.2.3")]


def test_watch_after_an_abort_returns_once_the_devices_settled_and_says_they_still_move(setup, monkeypatch):
    fleet, run = setup
    before = "ab" * 32  # the model every device ran before: an abort sends them back to it
    running = {"a": ModelRef("digits", "1.2.2", 1002002, before), "b": None}
    for i in range(5):  # NOTE: what a device runs comes from its status (a retained hello may be stale)
        fleet.devices.on_status(f"cam-{i:02d}", Status("committed", True, int(time.time()), running, "a"), time.time())
    rid = create(run)
    fleet.rollouts.tick(time.time())
    canary = next(e["device_id"] for e in fleet.rollouts.status(rid)["executions"] if e["wave"] == 0)
    fleet.rollouts.abort(rid, "aborted by the operator", time.time())
    steps = iter([None, "reverted"])

    def wait(seconds: float) -> None:
        if next(steps) == "reverted":
            fleet.rollouts.on_device_model(canary, before, time.time())

    monkeypatch.setattr("edgeml.cli.fleet_rollout_cmd.time.sleep", wait)
    out = run("rollout", "status", rid, "--watch")
    assert "1 device(s) still reverting" in out
    assert next(steps, "all used") == "all used"  # it waited for the revert, then returned
    assert [e["state"] for e in fleet.rollouts.status(rid)["executions"] if e["wave"] == 0] == ["rolled_back"]
