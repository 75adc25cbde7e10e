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
