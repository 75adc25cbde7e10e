"""A received desired state + the device's persisted guard state → accept or reject, with the reason.

Pure logic: no I/O and no clock of its own. The agent passes in the dict it persisted last time and
persists the one the verdict returns; it changes only when a message is accepted, so replayed, stale,
forged or refused messages change nothing, across reboots too. Checks, in order:

1. it decodes (bytes are decoded here, so `check` never raises on what the broker hands over);
2. the signature verifies against the pinned fleet key;
3. it is addressed to this device;
4. its sequence is strictly greater than the last accepted one (equal: "duplicate", lower: "stale");
5. its deadline has not passed (only when the caller passes `now`; devices without a trusted clock don't);
6. its release is not below the anti-rollback floor: the `min_release` the fleet signed in it (the fleet's
   policy: the last release it declared good, lowered only by an operator's signed rollback), or — in a
   desired state without one, from an older fleet — the installed release, unless `allow_rollback` is set.
   The refusal says which floor it was and where it comes from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from edgeml.errors import EdgemlError
from edgeml.protocol.codec import decode
from edgeml.protocol.desired_state import DesiredState, SignedDesiredState, verify_desired_state
from edgeml.protocol.protocol_error import ProtocolError
from edgeml.protocol.topics import check_device_id

__all__ = ["DesiredStateGuard", "Verdict"]

GUARD_STATE_VERSION = 1


@dataclass(frozen=True)
class Verdict:
    """`code`: accepted | malformed codes from decoding | bad_signature | wrong_key | wrong_device |
    duplicate | stale | expired | rollback_refused. `state`: persist this dict (a copy of the old one
    unless accepted)."""

    accepted: bool
    code: str
    reason: str
    state: dict[str, Any]
    desired: DesiredState | None = None
    hint: str | None = None


class DesiredStateGuard:
    """Decides whether this device applies a desired state; see the module docstring for the rules."""

    def __init__(self, device_id: str, public_key: Ed25519PublicKey) -> None:
        self.device_id = check_device_id(device_id)
        self.public_key = public_key

    def check(
        self,
        message: SignedDesiredState | bytes,
        state: Mapping[str, Any] | None,
        installed_release: int | None,
        now: int | None = None,
    ) -> Verdict:
        last = _last_sequence(state)
        kept = {"v": GUARD_STATE_VERSION, "last_sequence": last}
        try:
            desired = self._verified(message)
            self._check_fresh(desired, last, now)
            self._check_release(desired, installed_release)
        except ProtocolError as exc:
            return Verdict(False, exc.code, exc.reason, kept, hint=exc.hint)
        accepted = {"v": GUARD_STATE_VERSION, "last_sequence": desired.sequence}
        reason = f"sequence {desired.sequence}: release {desired.artifact.release} ({desired.artifact.version})"
        return Verdict(True, "accepted", reason, accepted, desired)

    def _verified(self, message: SignedDesiredState | bytes) -> DesiredState:
        if isinstance(message, (bytes, bytearray, memoryview)):
            message = decode(SignedDesiredState.KIND, bytes(message))
        desired = verify_desired_state(message, self.public_key)
        if desired.device_id != self.device_id:
            raise ProtocolError(
                "wrong_device", f"desired state is for device {desired.device_id!r}, not {self.device_id!r}"
            )
        return desired

    @staticmethod
    def _check_fresh(desired: DesiredState, last: int, now: int | None) -> None:
        if desired.sequence == last:
            raise ProtocolError("duplicate", f"sequence {last} was already accepted; nothing to do")
        if desired.sequence < last:
            raise ProtocolError("stale", f"sequence {desired.sequence} is older than the accepted {last}: a replay")
        if now is not None and now > desired.deadline:
            raise ProtocolError("expired", f"deadline {desired.deadline} passed (now {now}); the fleet will resend")

    @staticmethod
    def _check_release(desired: DesiredState, installed: int | None) -> None:
        a = desired.artifact
        what = f"release {a.release} ({a.name} {a.version})"
        if desired.min_release is not None:
            if a.release < desired.min_release:
                raise ProtocolError(
                    "rollback_refused",
                    f"{what} is below the anti-rollback floor {desired.min_release}, which the fleet signed as "
                    f"min_release in desired state {desired.sequence} (rollout {desired.rollout_id})",
                    "the fleet signed a desired state it refuses itself: roll out a release at or above the floor, "
                    "or take the devices back on purpose with `edgeml fleet rollout create … --allow-rollback`",
                )
            return
        if installed is not None and a.release < installed and not desired.allow_rollback:
            raise ProtocolError(
                "rollback_refused",
                f"{what} is below the anti-rollback floor {installed}: the highest release committed on this "
                "device (the desired state carries no min_release, so the device keeps its own floor)",
                "upgrade the fleet so it signs min_release, or send a signed rollback (allow_rollback=true)",
            )


def _last_sequence(state: Mapping[str, Any] | None) -> int:
    if state is None:
        return 0
    last = state.get("last_sequence") if isinstance(state, Mapping) else None
    if isinstance(last, bool) or not isinstance(last, int) or last < 0 or state.get("v") != GUARD_STATE_VERSION:
        raise EdgemlError(
            f"the desired-state guard's persisted state {dict(state) if isinstance(state, Mapping) else state!r} "
            "is corrupt",
            "restore the agent's state file from its backup; never reset it to empty, which would re-open replays",
        )
    return last
