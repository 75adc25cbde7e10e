"""The loop's commands are wired: help for each, approval recorded in the flow's ledger and listed, and the
auto-retrain picker leaves alone what has ended."""

from __future__ import annotations

import json
import time

from click.testing import CliRunner

from edgeml.cli import main


def test_loop_commands_have_help():
    for args in (["demo"], ["fleet", "retrain", "run"], ["fleet", "retrain", "approve"], ["fleet", "retrain", "flows"],
                 ["fleet", "serve"]):  # fmt: skip
        result = CliRunner().invoke(main, [*args, "--help"])
        assert result.exit_code == 0, result.output
    serve = CliRunner().invoke(main, ["fleet", "serve", "--help"]).output
    assert "--auto-retrain" in serve and "--mlflow" in serve


def test_approve_is_recorded_and_listed(tmp_path, keypair):
    common = ["--db", str(tmp_path / "fleet.sqlite"), "--store", str(tmp_path / "store"), "--key", str(keypair[0])]
    result = CliRunner().invoke(main, ["fleet", "retrain", "approve", "rt-1", *common])
    assert result.exit_code == 0, result.output
    from edgeml.flows import FlowLedger

    ledger = FlowLedger(tmp_path / "fleet.retrain" / "flows.sqlite")
    assert ledger.done("rt-1", "approval") == {"approved_by": "operator"}
    ledger.begin("rt-1")
    listed = CliRunner().invoke(main, ["fleet", "retrain", "flows", *common, "--json"])
    assert json.loads(listed.stdout)[0]["steps"] == {"approval": {"approved_by": "operator"}}


class _Requests:
    def __init__(self, rows):
        self.rows = rows

    def list(self):
        return self.rows


class _Fleet:
    def __init__(self, rows):
        self.retraining = _Requests(rows)


def test_auto_retrain_picks_open_requests_whose_flow_has_not_ended(tmp_path):
    from edgeml.flows import FlowLedger, RetrainSettings
    from edgeml.flows.auto_retrain import AutoRetrain

    settings = RetrainSettings(str(tmp_path / "fleet.sqlite"), str(tmp_path / "store"), "x:y")
    ledger = FlowLedger(settings.ledger_path())
    for rid, state in (("rt-done", "resolved"), ("rt-stopped", "stopped"), ("rt-failed", "failed")):
        ledger.begin(rid)
        ledger.set_state(rid, state, "")
    rows = [{"id": rid, "state": "open"} for rid in ("rt-new", "rt-done", "rt-stopped", "rt-failed")]
    rows.append({"id": "rt-closed", "state": "resolved"})
    auto = AutoRetrain(settings, _Fleet(rows), retry_after_s=3600)
    assert auto.due() == ["rt-new"]  # the failed one waits out its retry delay
    auto.retry_after_s = 0.0
    time.sleep(0.01)
    assert auto.due() == ["rt-new", "rt-failed"]
