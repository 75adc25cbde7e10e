"""Signed desired state: only the pinned fleet key, only this device, only newer sequences, releases only
forward unless a signed rollback says otherwise; anything refused changes nothing."""

from __future__ import annotations

import dataclasses
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from edgeml.errors import EdgemlError
from edgeml.protocol import (
    DesiredStateGuard,
    ProtocolError,
    SignedDesiredState,
    decode,
    encode,
    sign_desired_state,
    verify_desired_state,
)

INSTALLED = 1_002_000  # the release the device runs now (the fixture's artifact is the same release)


def _sign(desired, key, **changes):
    return sign_desired_state(dataclasses.replace(desired, **changes), key)


def _with_release(desired, key, release, **changes):
    artifact = dataclasses.replace(desired.artifact, release=release)
    return _sign(desired, key, artifact=artifact, **changes)


@pytest.fixture
def guard(fleet_key) -> DesiredStateGuard:
    return DesiredStateGuard("dev-1", fleet_key.public_key())


def test_signature_survives_the_wire(desired, fleet_key):
    received = decode("desired_state", encode(sign_desired_state(desired, fleet_key)))
    assert verify_desired_state(received, fleet_key.public_key()) == desired


def test_sign_refuses_a_state_devices_would_reject(desired, fleet_key):
    with pytest.raises(ProtocolError, match="sequence"):
        _sign(desired, fleet_key, sequence=0)


@pytest.mark.parametrize(
    ("path", "value"),
    [(["sequence"], 99), (["allow_rollback"], True), (["artifact", "sha256"], "0" * 64), (["extra"], 1)],
)
def test_any_tampered_field_fails_verification(desired, fleet_key, path, value):
    body = sign_desired_state(desired, fleet_key).to_dict()
    (body[path[0]] if len(path) == 2 else body)[path[-1]] = value
    tampered = decode("desired_state", json.dumps(body).encode())
    with pytest.raises(ProtocolError) as err:
        verify_desired_state(tampered, fleet_key.public_key())
    assert err.value.code == "bad_signature"


def test_another_key_is_refused_by_key_id(desired, fleet_key):
    forged = sign_desired_state(desired, Ed25519PrivateKey.generate())
    with pytest.raises(ProtocolError, match="not by the pinned key") as err:
        verify_desired_state(forged, fleet_key.public_key())
    assert err.value.code == "wrong_key"


def test_forged_key_id_still_fails(desired, fleet_key):
    forged = sign_desired_state(desired, Ed25519PrivateKey.generate()).to_dict()
    forged["signature"]["key_id"] = sign_desired_state(desired, fleet_key).signature["key_id"]
    with pytest.raises(ProtocolError) as err:
        verify_desired_state(decode("desired_state", json.dumps(forged).encode()), fleet_key.public_key())
    assert err.value.code == "bad_signature"


def test_accepts_a_new_state_and_advances_the_sequence(guard, desired, fleet_key):
    verdict = guard.check(sign_desired_state(desired, fleet_key), None, INSTALLED)
    assert verdict.accepted and verdict.code == "accepted" and verdict.desired == desired
    assert verdict.state == {"v": 1, "last_sequence": 5}


def test_accepts_raw_bytes_and_never_raises_on_garbage(guard, desired, fleet_key):
    assert guard.check(encode(sign_desired_state(desired, fleet_key)), None, INSTALLED).accepted
    verdict = guard.check(b"\x00garbage", {"v": 1, "last_sequence": 3}, INSTALLED)
    assert not verdict.accepted and verdict.code == "malformed" and verdict.state["last_sequence"] == 3


def test_replay_and_stale_change_nothing(guard, desired, fleet_key):
    first = guard.check(_sign(desired, fleet_key, sequence=7), None, INSTALLED)
    state = json.loads(json.dumps(first.state))  # as the agent persists it across a reboot
    again = guard.check(_sign(desired, fleet_key, sequence=7), state, INSTALLED)
    older = guard.check(_sign(desired, fleet_key, sequence=6), state, INSTALLED)
    assert (again.accepted, again.code, again.state) == (False, "duplicate", state)
    assert (older.accepted, older.code, older.state) == (False, "stale", state)
    assert guard.check(_sign(desired, fleet_key, sequence=8), state, INSTALLED).accepted


def test_wrong_device_is_refused(guard, desired, fleet_key):
    verdict = guard.check(_sign(desired, fleet_key, device_id="dev-2"), None, INSTALLED)
    assert (verdict.accepted, verdict.code) == (False, "wrong_device") and "dev-2" in verdict.reason


def test_bad_signature_is_a_verdict_not_an_exception(guard, desired):
    verdict = guard.check(sign_desired_state(desired, Ed25519PrivateKey.generate()), None, INSTALLED)
    assert (verdict.accepted, verdict.code, verdict.state["last_sequence"]) == (False, "wrong_key", 0)


def test_older_release_needs_a_signed_rollback(guard, desired, fleet_key):
    refused = guard.check(_with_release(desired, fleet_key, INSTALLED - 1), None, INSTALLED)
    assert (refused.accepted, refused.code, refused.state["last_sequence"]) == (False, "rollback_refused", 0)
    assert f"below the anti-rollback floor {INSTALLED}: the highest release committed on this device" in refused.reason
    assert "allow_rollback=true" in refused.hint
    allowed = guard.check(_with_release(desired, fleet_key, INSTALLED - 1, allow_rollback=True), None, INSTALLED)
    assert allowed.accepted


def test_a_signed_floor_replaces_the_devices_own_both_ways(guard, desired, fleet_key):
    hotfix = _with_release(desired, fleet_key, INSTALLED - 1, min_release=INSTALLED - 5)
    assert guard.check(hotfix, None, INSTALLED).accepted  # below the committed release, above the signed floor
    below = guard.check(_with_release(desired, fleet_key, INSTALLED + 1, min_release=INSTALLED + 2), None, None)
    assert (below.accepted, below.code) == (False, "rollback_refused")
    assert f"below the anti-rollback floor {INSTALLED + 2}, which the fleet signed as min_release" in below.reason
    assert f"in desired state {desired.sequence} (rollout {desired.rollout_id})" in below.reason
    flagged = _with_release(desired, fleet_key, INSTALLED, min_release=INSTALLED + 1, allow_rollback=True)
    assert guard.check(flagged, None, None).code == "rollback_refused"  # the signed floor holds even then


def test_min_release_is_signed_optional_and_absent_when_unset(desired, fleet_key):
    assert "min_release" not in sign_desired_state(desired, fleet_key).to_dict()  # an older fleet's bytes
    signed = sign_desired_state(dataclasses.replace(desired, min_release=7), fleet_key)
    assert SignedDesiredState.from_dict(signed.to_dict()).state.min_release == 7
    tampered = signed.to_dict() | {"min_release": 1}
    with pytest.raises(ProtocolError, match=r"signature"):
        verify_desired_state(SignedDesiredState.from_dict(tampered), fleet_key.public_key())


def test_same_or_newer_release_and_first_install_are_fine(guard, desired, fleet_key):
    assert guard.check(_with_release(desired, fleet_key, INSTALLED), None, INSTALLED).accepted
    assert guard.check(_with_release(desired, fleet_key, INSTALLED + 1), None, INSTALLED).accepted
    assert guard.check(_with_release(desired, fleet_key, 1), None, None).accepted


def test_deadline_is_checked_only_with_a_clock(guard, desired, fleet_key):
    signed = sign_desired_state(desired, fleet_key)
    assert guard.check(signed, None, INSTALLED).accepted
    late = guard.check(signed, None, INSTALLED, now=desired.deadline + 1)
    assert (late.accepted, late.code) == (False, "expired")


@pytest.mark.parametrize("state", [{}, {"v": 1, "last_sequence": -1}, {"v": 2, "last_sequence": 1}, "x"])
def test_corrupt_guard_state_is_an_error_not_a_reset(guard, desired, fleet_key, state):
    with pytest.raises(EdgemlError, match="never reset it"):
        guard.check(sign_desired_state(desired, fleet_key), state, INSTALLED)
