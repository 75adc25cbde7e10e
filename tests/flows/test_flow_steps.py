"""The retraining flow's building blocks without Prefect: the ledger's lifecycle, the drift resampler, and the
steps that must be idempotent (a reserved version, a rollout found by its artifact rather than created twice)."""

from __future__ import annotations

import time

import numpy as np

from edgeml.drift import bin_counts, psi
from edgeml.flows import FlowLedger, RetrainSettings
from edgeml.flows import retrain_steps as steps
from edgeml.flows.drift_resample import resample_like
from tests.conftest import DIGITS


def test_ledger_records_steps_and_states(tmp_path):
    ledger = FlowLedger(tmp_path / "flows.sqlite")
    assert ledger.begin("rt-1")["attempts"] == 1
    ledger.record("rt-1", "export", {"folder": "x"})
    ledger.set_state("rt-1", "failed", "boom")
    again = FlowLedger(tmp_path / "flows.sqlite").begin("rt-1")  # a re-run, in another process
    assert again["attempts"] == 2 and again["state"] == "running" and again["steps"] == {"export": {"folder": "x"}}
    assert ledger.done("rt-1", "train") is None


def test_resampled_data_has_the_devices_histogram_and_keeps_its_shape():
    with np.load(DIGITS / "eval.npz") as z:
        x = z["input"]
    edges = [0.0, 0.0625, 0.25, 0.5, 0.75, 0.9375]
    reference = bin_counts(x.reshape(-1), edges).astype(float)
    wanted = reference * 0.6
    wanted[-1] += 0.4 * reference.sum()
    y = resample_like(x, edges, wanted.tolist(), low=0.0, high=1.0, seed=1)
    assert y.shape == x.shape and y.dtype == x.dtype and y.min() >= 0.0 and y.max() <= 1.0
    assert psi(wanted, bin_counts(y.reshape(-1), edges)) < 0.01  # the devices' histogram, up to sampling noise
    assert psi(reference, bin_counts(y.reshape(-1), edges)) > 0.25  # and far from the reference


def test_rollout_step_finds_the_rollout_an_interrupted_run_created(tmp_path, keypair, releases):
    from edgeml.artifact import load_private_key
    from edgeml.fleet import Fleet
    from edgeml.protocol import Hello

    fleet = Fleet(tmp_path / "fleet.sqlite", tmp_path / "store", load_private_key(keypair[0]))
    fleet.devices.on_hello(Hello("cam-1", "cpu-ort", "t", 10**9, {"onnxruntime": "1"}, None), time.time())
    settings = RetrainSettings(str(tmp_path / "fleet.sqlite"), str(tmp_path / "store"), "x:y", key=str(keypair[0]))
    published = steps.publish_release(settings, {"artifact": str(releases["1.3.0"])})
    assert steps.publish_release(settings, {"artifact": str(releases["1.3.0"])}) == published  # by content
    first = steps.start_rollout(settings, published)
    second = steps.start_rollout(settings, published)  # the ledger lost the first: found by the artifact's sha256
    assert second["rollout_id"] == first["rollout_id"] and second["reused"]
    assert len(fleet.rollouts.list()) == 1
    evidence = {"replaced": {"name": "digits", "version": "1.2.3"}}
    assert steps.reserve_version(settings, evidence) == {"name": "digits", "version": "1.4.0"}  # 1.3.0 is taken
