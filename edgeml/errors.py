"""Errors edgeml raises: each names what is wrong and what to do next.

Every error a user can cause derives from `EdgemlError`, which carries a `hint` (the next step) so the
CLI and library callers show the same message. Nothing else in edgeml should escape to a user as a
bare exception for a problem they caused.
"""

from __future__ import annotations

__all__ = [
    "ArtifactError",
    "BudgetError",
    "CalibrationError",
    "EdgemlError",
    "ModelIntakeError",
    "OutputExistsError",
    "PassContractError",
    "RuntimeUnavailableError",
    "SigningKeyError",
    "TargetError",
    "VerificationError",
]


class EdgemlError(Exception):
    """A problem the user can fix; `hint` says how."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message}\n  hint: {self.hint}" if self.hint else self.message


class ModelIntakeError(EdgemlError):
    """The model source cannot be read, checked or exported."""


class CalibrationError(EdgemlError):
    """Calibration or evaluation data is missing, empty, non-finite or does not fit the model."""


class TargetError(EdgemlError):
    """Unknown target, bad target option, or a target that cannot run the model."""


class BudgetError(EdgemlError):
    """No candidate meets the accuracy budget the user asked for."""

    exit_code = 3


class OutputExistsError(EdgemlError):
    """The output path exists and --force was not given."""


class PassContractError(EdgemlError):
    """A pass broke its contract (wrong result type, postcondition failed): a bug in that pass."""


class RuntimeUnavailableError(EdgemlError):
    """The runtime an artifact needs is not installed here."""


class ArtifactError(EdgemlError):
    """An artifact cannot be written or read."""


class VerificationError(ArtifactError):
    """An artifact failed verification; `code` says which check (for scripts and tests)."""

    exit_code = 4

    def __init__(self, code: str, message: str, hint: str | None = None) -> None:
        super().__init__(message, hint)
        self.code = code


class SigningKeyError(EdgemlError):
    """A signing or public key cannot be created, read or used."""
