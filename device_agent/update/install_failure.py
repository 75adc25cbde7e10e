"""Why an update was refused or rolled back: a machine-readable `code` plus a message and a hint.

Codes (stable: the fleet groups install failures by them). Before `installing` a failure is a refusal
(nothing on the device changed); from `installing` on it is a rollback (the candidate slot is wiped):
  desired state wrong_target (the desired state names another target), bad_signature, wrong_key, ...
  download      hash_mismatch (the assembled file failed its sha256 three times), disk_full, disk_error
  verification  not_found, malformed, schema_version, unsigned, wrong_key, bad_signature, missing_file,
                size_mismatch, hash_mismatch, extra_file, changed_during_install
  admission     wrong_target, runtime_unavailable, runtime_too_old, release_not_newer, no_self_test
  copy          disk_full, copy_failed
  self-test     model_load_failed, self_test_error, self_test_mismatch, latency_budget
  recovery      interrupted (the device restarted in the middle of the step), internal_error (a bug; see the log)
"""

from __future__ import annotations

import errno
from typing import Any

from edgeml.errors import EdgemlError, VerificationError

__all__ = ["InstallFailure"]


class InstallFailure(EdgemlError):
    """One step of an update failed; the installer refuses or rolls back and reports `code` and the message."""

    def __init__(self, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.code = code
        self.update: Any = None  # what the failing step learnt about the update (an UpdateRecord), kept with it

    @classmethod
    def from_verification(cls, exc: VerificationError) -> InstallFailure:
        return cls(exc.code, exc.message, exc.hint)

    @classmethod
    def from_copy_error(cls, exc: OSError, what: str, slot: str) -> InstallFailure:
        if exc.errno in (errno.ENOSPC, errno.EDQUOT):
            return cls(
                "disk_full",
                f"the disk filled up while copying {what} into slot {slot} ({exc.filename or 'state folder'})",
                "free space in the agent's state folder and send the update again; the running model is unchanged",
            )
        return cls("copy_failed", f"cannot copy {what} into slot {slot}: {exc}", "check the state folder's disk")

    @classmethod
    def interrupted(cls, what: str, state: str) -> InstallFailure:
        return cls(
            "interrupted",
            f"the update to {what} was cut short in state {state!r} (power cut or crash); the model that "
            "served before (if any) stays active",
            "nothing to do on the device: the fleet sends the update again",
        )
