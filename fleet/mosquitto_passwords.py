"""Broker credentials → a Mosquitto `password_file` (hashed) and the plaintext list devices are provisioned from.

The hashed lines are Mosquitto 2.0's own format, `user:$7$<iterations>$<base64 salt>$<base64 hash>`
(PBKDF2-HMAC-SHA512, 12-byte salt, 64-byte hash), what `mosquitto_passwd -b` writes; hashing here needs no
Mosquitto on the machine and no process per user. Passwords edgeml generates are 32 random URL-safe
characters (192 bits), so the iteration count (Mosquitto's default, 101) only decides how much CPU a
reconnect storm costs the broker, not how guessable a password is.

The plaintext credentials live in Mosquitto's plaintext form (`user:password` per line, what
`mosquitto_passwd -U` would hash in place) in a file only its owner may read (0600): give each device its own
line (`edgeml-agent init --broker mqtt://ID:PASSWORD@HOST`), then keep it offline or delete it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

from edgeml.atomic_files import write_bytes_atomic
from edgeml.fleet.database import FleetError

__all__ = ["ensure_credentials", "hash_password", "password_file", "verify_password"]

ITERATIONS = 101  # Mosquitto 2.0's default (mosquitto_passwd -I)
_SALT_BYTES = 12
_HASH_BYTES = 64


def hash_password(password: str, salt: bytes | None = None, iterations: int = ITERATIONS) -> str:
    """`$7$…`: PBKDF2-HMAC-SHA512 of `password`, as Mosquitto 2.0 stores and checks it."""
    salt = os.urandom(_SALT_BYTES) if salt is None else salt
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations, _HASH_BYTES)
    return f"$7${iterations}${base64.b64encode(salt).decode()}${base64.b64encode(digest).decode()}"


def verify_password(password: str, hashed: str) -> bool:
    """Whether `hashed` (a `$7$…` field of a password file) is `password`'s."""
    try:
        _, kind, iterations, salt, digest = hashed.split("$")
        expected = base64.b64decode(digest, validate=True)
        got = hashlib.pbkdf2_hmac("sha512", password.encode(), base64.b64decode(salt, validate=True),
                                  int(iterations), len(expected))  # fmt: skip
    except ValueError:
        return False
    return kind == "7" and hmac.compare_digest(got, expected)


def password_file(credentials: dict[str, str]) -> str:
    """The hashed password file for `credentials` (user → plaintext password), one line per user, sorted."""
    return "".join(f"{user}:{hash_password(password)}\n" for user, password in sorted(credentials.items()))


def ensure_credentials(path: str | os.PathLike[str], users: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """Read `path` (`user:password` lines), add a random password for every user in `users` that has none,
    and write it back with mode 0600. Returns (every credential, the users added). Existing passwords are
    kept, so re-running after new devices registered changes nobody else's."""
    path = Path(path)
    credentials = _read(path)
    added = [u for u in dict.fromkeys(users) if u not in credentials]
    for user in added:
        credentials[user] = secrets.token_urlsafe(24)
    text = "".join(f"{u}:{p}\n" for u, p in sorted(credentials.items()))
    write_bytes_atomic(path, text.encode(), mode=0o600)
    return credentials, added


def _read(path: Path) -> dict[str, str]:
    if not path.exists():
        return {}
    credentials = {}
    for n, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        user, sep, password = line.partition(":")
        if not sep or not user or not password or password.startswith("$7$"):
            raise FleetError(
                f"{path}:{n} is not a `user:password` line of plaintext credentials",
                "pass the plaintext credentials file (--credentials), not the hashed password file",
            )
        credentials[user] = password
    return credentials
