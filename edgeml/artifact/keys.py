"""Ed25519 key pairs: create them with safe permissions, load them with clear errors."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from edgeml.atomic_files import write_bytes_atomic
from edgeml.errors import SigningKeyError

__all__ = ["create_keypair", "key_id", "load_private_key", "load_public_key", "public_path_for"]

PRIVATE_NAME = "signing.key"
PUBLIC_NAME = "signing.pub"


def public_path_for(private_path: Path) -> Path:
    return private_path.with_suffix(".pub")


def create_keypair(out_dir: str | os.PathLike[str], force: bool = False) -> tuple[Path, Path]:
    """Write `signing.key` (mode 0600) and `signing.pub` into `out_dir`; refuse to overwrite unless `force`."""
    out = Path(out_dir)
    private_path, public_path = out / PRIVATE_NAME, out / PUBLIC_NAME
    if private_path.exists() and not force:
        raise SigningKeyError(
            f"{private_path} already exists",
            "keep using it, or pass --force to replace it (artifacts signed with the old key will no "
            "longer verify against the new public key)",
        )
    out.mkdir(parents=True, exist_ok=True)
    os.chmod(out, 0o700)
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    _write_private(private_path, private_pem)
    write_bytes_atomic(public_path, _public_pem(key.public_key()))
    return private_path, public_path


def _write_private(path: Path, data: bytes) -> None:
    write_bytes_atomic(path, data, mode=0o600)


def _public_pem(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)


def key_id(key: Ed25519PublicKey) -> str:
    """First 16 hex digits of sha256 over the raw public key: names the key in manifests and errors."""
    raw = key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def load_private_key(path: str | os.PathLike[str]) -> Ed25519PrivateKey:
    data = _read(Path(path), "signing key")
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm) as exc:
        raise SigningKeyError(
            f"{path} is not an unencrypted PEM private key ({exc})",
            "create one with `edgeml keys create --out DIR`",
        ) from exc
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 key", "use `edgeml keys create`")
    return key


def load_public_key(path: str | os.PathLike[str]) -> Ed25519PublicKey:
    data = _read(Path(path), "public key")
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm) as exc:
        hint = "pass the .pub file written by `edgeml keys create`, not the private key"
        raise SigningKeyError(f"{path} is not a PEM public key ({exc})", hint) from exc
    if not isinstance(key, Ed25519PublicKey):
        raise SigningKeyError(f"{path} holds a {type(key).__name__}, not an Ed25519 key", "use `edgeml keys create`")
    return key


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise SigningKeyError(f"{what} {path} does not exist", "create a pair with `edgeml keys create`") from None
    except OSError as exc:
        raise SigningKeyError(f"cannot read {what} {path}: {exc.strerror}") from exc
