"""Ed25519 signatures over a canonical JSON document (every field but `signature` itself).

One signature block format — {algorithm, key_id, value} — for manifests and the fleet's desired states;
`signature_problem` is the one check, and each caller turns its answer into its own error type.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edgeml.artifact.canonical import canonical_json
from edgeml.artifact.keys import key_id
from edgeml.errors import VerificationError

__all__ = ["sign_manifest", "signature_block", "signature_problem", "signed_bytes", "verify_manifest_signature"]

ALGORITHM = "ed25519"


def signed_bytes(manifest: dict[str, Any]) -> bytes:
    return canonical_json({k: v for k, v in manifest.items() if k != "signature"})


def signature_block(document: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, str]:
    value = base64.b64encode(key.sign(signed_bytes(document))).decode()
    return {"algorithm": ALGORITHM, "key_id": key_id(key.public_key()), "value": value}


def signature_problem(sig: Any, document: dict[str, Any], public_key: Ed25519PublicKey) -> tuple[str, str] | None:
    """None when `public_key` signed exactly `document`; else (code, what is wrong), code one of
    'unsigned' | 'bad_signature' | 'wrong_key'."""
    if not isinstance(sig, dict) or not sig.get("value"):
        return "unsigned", "carries no signature"
    if sig.get("algorithm") != ALGORITHM:
        return "bad_signature", f"signature algorithm {sig.get('algorithm')!r} is not ed25519"
    if sig.get("key_id") != key_id(public_key):
        return "wrong_key", f"was signed by key {sig.get('key_id')!r}, not by the pinned key {key_id(public_key)}"
    try:
        public_key.verify(base64.b64decode(sig["value"], validate=True), signed_bytes(document))
    except (InvalidSignature, binascii.Error, ValueError, TypeError, UnicodeEncodeError):
        return "bad_signature", "signature does not match its contents: changed after signing"
    return None


def sign_manifest(manifest: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """A copy of `manifest` with its `signature` block set."""
    return {**manifest, "signature": signature_block(manifest, key)}


_MANIFEST_HINTS = {
    "unsigned": "sign it: recompile with --key",
    "wrong_key": "pass the public key that belongs to the signing key used at compile time",
    "bad_signature": "do not use this artifact; rebuild it or fetch it again from a trusted source",
}


def verify_manifest_signature(manifest: dict[str, Any], public_key: Ed25519PublicKey) -> str:
    """Return the signing key id, or raise VerificationError('unsigned' | 'wrong_key' | 'bad_signature')."""
    problem = signature_problem(manifest.get("signature"), manifest, public_key)
    if problem is not None:
        code, what = problem
        raise VerificationError(code, f"the manifest {what}", _MANIFEST_HINTS[code])
    return key_id(public_key)
