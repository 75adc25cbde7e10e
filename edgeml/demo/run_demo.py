"""`edgeml demo`: the whole product on one machine, on embedded defaults, in a few minutes.

    compile digits 1.0.0 (tracked in MLflow) → broker, fleet, one real agent + N simulated devices → staged
    rollout → drift injected → retraining request → the Prefect flow (train, compile, evaluate, canary,
    promote) → every device on the retrained release → summary (+ HTML report)

Each step reports through `say(step, detail)`; everything started here is stopped before returning.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgeml.errors import EdgemlError

__all__ = ["DemoSettings", "examples_dir", "run_demo"]

HOOK = "examples.digits.retrain_hook:retrain"


@dataclass(frozen=True)
class DemoSettings:
    root: Path
    devices: int = 6
    drift: float = 0.3
    broker: str | None = None
    mlflow: bool = True  # record to an MLflow store in `root` (skipped, with a note, without the extra)
    timeout_s: float = 600.0


def examples_dir() -> Path:
    """examples/digits of the source tree edgeml runs from (the demo's model, data and training hook)."""
    digits = Path(__file__).resolve().parents[2] / "examples" / "digits"
    if not (digits / "model.onnx").exists():
        raise EdgemlError(
            f"the demo needs examples/digits beside the edgeml package, and {digits} has no model.onnx",
            "run it from a clone of the repository: pip install -e '.[compile,fleet,mlflow,prefect]'",
        )
    return digits


def run_demo(s: DemoSettings, say: Callable[[str, str], None]) -> dict[str, Any]:
    from edgeml.artifact import create_keypair
    from edgeml.demo.local_fleet import LocalFleet

    started = time.monotonic()
    digits = examples_dir()
    sys.path.insert(0, str(digits.parents[1]))  # NOTE: the training hook is examples.digits.retrain_hook
    s.root.mkdir(parents=True, exist_ok=True)
    key, _ = create_keypair(s.root / "keys")
    uri = _mlflow_uri(s, say)
    v1 = _compile_first_release(s, digits, key, uri, say)
    world = LocalFleet(s.root / "fleet", key, digits, devices=s.devices, broker_url=s.broker)
    world.start()
    mirror = _alias_mirror(world, uri)
    try:
        say(
            "fleet",
            f"broker {world.broker_url} ({world.broker_kind}), fleet service, "
            f"1 real agent + {s.devices} simulated devices",
        )
        world.wait(lambda: len(world.fleet.devices.select()) == s.devices + 1, 60, "every device registered")
        first = v1 | _roll_out(world, v1, say)
        request = _drift_until_request(world, s, say)
        flow_run = _run_flow(world, s, key, uri, request["id"], say)
        world.wait(lambda: _all_on(world, flow_run), 60, "every device on the retrained release")
        time.sleep(3 * world.telemetry_s)  # NOTE: a few rounds of traffic on the new release for the report
        if mirror is not None:
            mirror.notify()
            mirror.wait_idle(60)
        summary = _summary(world, s, uri, first, request, flow_run, time.monotonic() - started, key)
        from edgeml.demo.demo_report import fleet_series

        summary["series"] = fleet_series(world.fleet, world.history[0]["t"] if world.history else time.time())
    finally:
        if mirror is not None:
            mirror.stop()
        world.stop()
    from edgeml.demo.demo_report import write_report

    summary["report"] = str(write_report(s.root / "report.html", summary, world.history))
    series = summary.pop("series")
    (s.root / "summary.json").write_text(json.dumps(summary | {"series": series}, indent=1, default=str) + "\n")
    return summary


def _mlflow_uri(s: DemoSettings, say) -> str | None:
    if not s.mlflow:
        return None
    try:
        import mlflow  # noqa: F401
    except ImportError:
        say("mlflow", "not installed: runs and aliases are not recorded (pip install 'edgeml[mlflow]')")
        return None
    return f"sqlite:///{(s.root / 'mlflow' / 'mlflow.db').resolve()}"


def _compile_first_release(s: DemoSettings, digits: Path, key: Path, uri: str | None, say) -> dict[str, Any]:
    import edgeml

    say("compile", "digits 1.0.0 for cpu-ort (fp32 and INT8 candidates, measured here)")
    result = edgeml.compile(str(digits / "model.onnx"), "cpu-ort", key=str(key), name="digits", version="1.0.0",
                            out=str(s.root / "build" / "digits-1.0.0"), force=True)  # fmt: skip
    tracked = None
    if uri is not None:
        from edgeml.tracking import log_compile

        tracked = log_compile(result, uri).to_dict()
    say("compile", f"shipped {result.decision.chosen}: {result.decision.reason}")
    return {"artifact": str(result.out), "version": "1.0.0", "decision": result.decision.to_dict(), "mlflow": tracked}


def _alias_mirror(world, uri: str | None):
    if uri is None:
        return None
    from edgeml.tracking import FleetAliasMirror

    mirror = FleetAliasMirror(world.fleet, uri)
    world.service.on_moves.append(mirror.notify)
    return mirror


def _roll_out(world, v1: dict[str, Any], say) -> dict[str, Any]:
    from edgeml.fleet import RolloutPlan

    published = world.fleet.artifacts.publish(v1["artifact"], time.time())
    plan = RolloutPlan.build("20%", "100%", "2s", "2m", ["install_success>=1.0"])
    r = world.fleet.rollouts.create(published["sha256"], "target=cpu-ort", plan, time.time())
    say("rollout", f"{r['id']}: digits 1.0.0 to {len(r['executions'])} devices, canary first, then the rest")
    world.wait(lambda: world.fleet.rollouts.status(r["id"])["state"] in ("completed", "aborted"), 180, "rollout")
    status = world.fleet.rollouts.status(r["id"])
    if status["state"] != "completed":
        raise EdgemlError(f"the demo's first rollout {r['id']} {status['state']}: {status['reason']}")
    say("rollout", f"{r['id']} completed: every device runs digits 1.0.0")
    return {"rollout_id": r["id"], "sha256": published["sha256"], "waves": status["waves"]}


def _drift_until_request(world, s: DemoSettings, say) -> dict[str, Any]:
    world.inject_drift(s.drift, "1.0.0")
    say("drift", f"{s.drift:.0%} of input values now saturate (the top reference bin) on every device")
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(2 * world.telemetry_s)
        # NOTE: the service scans each minute (RETRAIN_SCAN_S); the demo does not wait for it
        if world.fleet.retraining.scan(time.time()):
            request = world.fleet.retraining.list()[0]
            say("request", f"{request['id']}: PSI {request['max_psi']:.2f} on {len(request['devices'])} devices")
            return request
    raise EdgemlError("no retraining request opened within 2 minutes of injecting drift")


def _run_flow(world, s: DemoSettings, key: Path, uri: str | None, request_id: str, say) -> dict[str, Any]:
    from edgeml.flows import RetrainSettings, run_retrain

    settings = RetrainSettings(
        str(world.db_path), str(world.store_path), HOOK, key=str(key), work_dir=str(s.root / "retrain"),
        mlflow=uri, canary="20%", waves="100%", bake="3s", deadline="2m", rollout_timeout_s=300,
    )  # fmt: skip
    say("flow", f"retrain_and_roll_out({request_id}): train → compile → evaluate → canary → promote")
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_steps, args=(settings, request_id, say, stop), daemon=True)
    watcher.start()
    try:
        run = run_retrain(request_id, settings)
    finally:
        stop.set()
        watcher.join(timeout=5)
    say("flow", f"{run['state']}: {run['reason']}")
    if run["state"] != "resolved":
        raise EdgemlError(f"the retraining flow ended {run['state']}: {run['reason']}")
    return run


def _watch_steps(settings, request_id: str, say, stop: threading.Event) -> None:
    """Say each step of the flow as its result reaches the ledger."""
    from edgeml.flows import FlowLedger

    ledger, seen = FlowLedger(settings.ledger_path()), set()
    while not stop.wait(1.0):
        for step, result in ledger.steps(request_id).items():
            if step not in seen:
                seen.add(step)
                say("  step", f"{step}: {_step_line(step, result)}")


def _step_line(step: str, r: dict[str, Any]) -> str:
    lines = {
        "export": lambda: f"evidence of {r['replaced']['name']}@{r['replaced']['version']} → {r['folder']}",
        "train": lambda: "; ".join(r.get("notes") or [r["model"]]),
        "version": lambda: f"{r['name']}@{r['version']} reserved",
        "compile": lambda: f"{r['version']} compiled, shipped {r['decision']}",
        "evaluate": lambda: r["reason"] + " " + json.dumps(r["accuracy"]),
        "track": lambda: (
            f"MLflow run {r.get('run_id', '')[:12]}, model version {r.get('model_version')}"
            if r.get("tracked")
            else "not tracked"
        ),
        "publish": lambda: f"{r['release']} published as {r['sha256'][:12]}…",
        "rollout": lambda: f"rollout {r['rollout_id']} to {r.get('devices', '?')} devices (canary first)",
        "rollout_outcome": lambda: f"rollout {r['state']}: {r['reason']}",
    }
    return lines.get(step, lambda: json.dumps(r)[:120])()


def _all_on(world, run: dict[str, Any]) -> bool:
    version = run["steps"]["version"]["version"]
    return set(world.versions().values()) == {version}


def _summary(world, s, uri, first, request, run, seconds: float, key: Path) -> dict[str, Any]:
    steps = run["steps"]
    accuracy = steps["evaluate"]["accuracy"]
    new_rollout = world.fleet.rollouts.status(steps["rollout"]["rollout_id"])
    out = {
        "seconds": round(seconds, 1),
        "devices": {"real_agents": 1, "simulated": s.devices, "versions": world.versions()},
        "first_release": first,
        "request": {"id": request["id"], "max_psi": request["max_psi"], "devices": len(request["devices"]),
                    "state": next(r["state"] for r in world.fleet.retraining.list() if r["id"] == request["id"])},
        "retrained_release": steps["publish"] | {"rollout_id": new_rollout["id"], "rollout_state": new_rollout["state"],
                                                 "waves": new_rollout["waves"]},
        "accuracy": accuracy,
        "agent_live_accuracy": _live_accuracy(world.history, first["version"], steps["version"]["version"]),
        "flow": {"state": run["state"], "reason": run["reason"], "attempts": run["attempts"]},
        "fleet": {"db": str(world.db_path), "status": f"edgeml fleet devices --db {world.db_path} --key {key}"},
    }  # fmt: skip
    if uri is not None:
        from edgeml.tracking import aliases, open_client

        out["mlflow"] = {"uri": uri, "aliases": aliases(open_client(uri), "digits"),
                         "ui": f"mlflow ui --backend-store-uri {uri}"}  # fmt: skip
    return out


def _live_accuracy(history: list[dict[str, Any]], old: str, new: str) -> dict[str, float | None]:
    """The real agent's accuracy on the drifted traffic it served (its own feedback), per release."""
    per: dict[str, list[float]] = {old: [], new: []}
    for row in history:
        version = row["versions"].get("agent-00")
        if row.get("drifted") and row["agent_accuracy"] is not None and version in per:
            per[version].append(row["agent_accuracy"])
    return {v: round(sum(a) / len(a), 1) if a else None for v, a in per.items()}
