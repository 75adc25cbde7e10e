"""Ed25519 signatures over the canonical manifest (every field but `signature` itself)."""

from __future__ import annotations

import base64
import binascii
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edgeml.artifact.canonical import canonical_json
from edgeml.artifact.keys import key_id
from edgeml.errors import VerificationError

__all__ = ["sign_manifest", "signed_bytes", "verify_manifest_signature"]

ALGORITHM = "ed25519"


def signed_bytes(manifest: dict[str, Any]) -> bytes:
    return canonical_json({k: v for k, v in manifest.items() if k != "signature"})


def sign_manifest(manifest: dict[str, Any], key: Ed25519PrivateKey) -> dict[str, Any]:
    """A copy of `manifest` with its `signature` block set."""
    value = base64.b64encode(key.sign(signed_bytes(manifest))).decode()
    return {**manifest, "signature": {"algorithm": ALGORITHM, "key_id": key_id(key.public_key()), "value": value}}


def verify_manifest_signature(manifest: dict[str, Any], public_key: Ed25519PublicKey) -> str:
    """Return the signing key id, or raise VerificationError('unsigned' | 'wrong_key' | 'bad_signature')."""
    sig = manifest.get("signature")
    if not isinstance(sig, dict) or not sig.get("value"):
        raise VerificationError("unsigned", "the manifest carries no signature", "sign it: recompile with --key")
    if sig.get("algorithm") != ALGORITHM:
        raise VerificationError("bad_signature", f"signature algorithm {sig.get('algorithm')!r} is not ed25519")
    expected = key_id(public_key)
    if sig.get("key_id") != expected:
        raise VerificationError(
            "wrong_key",
            f"the artifact was signed by key {sig.get('key_id')}, not by the given public key {expected}",
            "pass the public key that belongs to the signing key used at compile time",
        )
    try:
        public_key.verify(base64.b64decode(sig["value"], validate=True), signed_bytes(manifest))
    except (InvalidSignature, binascii.Error, ValueError, TypeError):
        raise VerificationError(
            "bad_signature",
            "the manifest signature does not match its contents: the manifest was changed after signing",
            "do not use this artifact; rebuild it or fetch it again from a trusted source",
        ) from None
    return expected
