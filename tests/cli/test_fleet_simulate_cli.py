"""`edgeml fleet simulate` refuses a drift that is not a share before it connects to anything."""

from __future__ import annotations

import os
import subprocess

import pytest


def simulate(*args, keypair, cwd):
    cmd = ["edgeml", "fleet", "simulate", "--broker", "mqtt://127.0.0.1:9", "--pubkey", str(keypair[1]), *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=os.environ, timeout=60)


@pytest.mark.parametrize("value", ["1.5", "-0.1", "nan"])
def test_drift_outside_zero_to_one_is_refused_with_the_range(tmp_path, keypair, value):
    out = simulate("--drift", value, keypair=keypair, cwd=tmp_path)
    assert out.returncode == 2
    assert f"--drift {float(value):g} is outside [0, 1]" in out.stderr
    assert "share of inputs that drifted" in out.stderr


def test_a_faults_drift_is_checked_too(tmp_path, keypair):
    out = simulate("--fault", "version=1.1.0:latency_ms=+40,drift=2", keypair=keypair, cwd=tmp_path)
    assert out.returncode == 2 and "fault 'version=1.1.0:latency_ms=+40,drift=2': drift 2 is outside" in out.stderr
    out = simulate("--fault", "version=1.1.0:drift=lots", keypair=keypair, cwd=tmp_path)
    assert out.returncode == 2 and "drift needs a number, not 'lots'" in out.stderr


def test_the_help_says_what_drift_does(tmp_path, keypair):
    out = simulate("--help", keypair=keypair, cwd=tmp_path)
    assert "--drift FLOAT" in out.stdout and "retraining" in out.stdout and "drift=0.5" in out.stdout


@pytest.mark.broker
@pytest.mark.parametrize(("to", "processes"), [("group", 2), ("parent", 2), ("parent", 1)])
def test_ctrl_c_ends_a_run_with_its_report(tmp_path, keypair, broker, to, processes):
    """Ctrl-C reaches every process from a terminal (the group) or only the parent (a supervisor's SIGINT):
    either way each worker stops its devices and the summed report is printed."""
    import json
    import queue
    import signal
    import time

    from edgeml.transport.mqtt_transport import MqttTransport

    hellos: queue.Queue = queue.Queue()
    watcher = MqttTransport(broker.url, "watcher")
    watcher.subscribe("edgeml/v1/devices/+/hello", lambda topic, payload: hellos.put(topic))
    watcher.connect(timeout=10)
    cmd = ["edgeml", "fleet", "simulate", "--broker", broker.url, "--pubkey", str(keypair[1]), "--devices", "6",
           "--processes", str(processes), "--duration", "5m", "--prefix", "cc", "--json"]  # fmt: skip
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=os.environ, start_new_session=True)  # fmt: skip
    try:
        seen = {hellos.get(timeout=60) for _ in range(6)}
        assert seen == {f"edgeml/v1/devices/cc-{i:05d}/hello" for i in range(6)}  # ids numbered across processes
        time.sleep(0.5)
        if to == "group":
            os.killpg(proc.pid, signal.SIGINT)
        else:
            proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        watcher.close()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 0, err
    report = json.loads(out[out.index("{") :])
    assert report["interrupted"] is True and report["processes"] == processes and report["devices"] == 6
    assert report["versions"] == {"none": 6} and report["seconds"] < 120
    assert report["peak_rss_mib"] > report["baseline_rss_mib"] > 0 and report["kib_per_device"] > 0
