"""`Authorization: Bearer …` → the caller's role: operator (every route), read (GET only), or nobody.

Tokens come from a file or an environment variable, never from a command-line argument (which `ps` shows
to every user). Comparison is constant-time (`hmac.compare_digest`), and a short or missing operator token
is refused at start-up, so the API never runs open by accident.
"""

from __future__ import annotations

import hmac
import logging
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from edgeml.fleet.database import FleetError

__all__ = ["MIN_TOKEN_CHARS", "ApiTokens", "read_token"]

log = logging.getLogger(__name__)
MIN_TOKEN_CHARS = 16
MAKE_TOKEN = (
    "python -c 'import secrets; print(secrets.token_urlsafe(32))' > fleet-http.token && chmod 600 fleet-http.token"
)


@dataclass(frozen=True)
class ApiTokens:
    operator: str
    read: str | None = None

    def __post_init__(self) -> None:
        for name, token in (("operator", self.operator), ("read", self.read)):
            if token is not None and len(token) < MIN_TOKEN_CHARS:
                raise FleetError(
                    f"the HTTP API's {name} token has {len(token)} characters; it needs at least {MIN_TOKEN_CHARS}",
                    f"make one: {MAKE_TOKEN}",
                )
        if self.read is not None and hmac.compare_digest(self.read.encode(), self.operator.encode()):
            raise FleetError("the HTTP API's read token equals its operator token", "make a separate read token")

    def role(self, authorization: str | None) -> str | None:
        """'operator', 'read', or None for a missing, malformed or unknown bearer token."""
        scheme, _, given = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not given.strip():
            return None
        token = given.strip().encode()
        if hmac.compare_digest(token, self.operator.encode()):
            return "operator"
        if self.read is not None and hmac.compare_digest(token, self.read.encode()):
            return "read"
        return None


def read_token(path: str | os.PathLike[str] | None, env_var: str) -> str | None:
    """The token in `path` (first line, stripped), else in the environment variable, else None."""
    if path is None:
        return os.environ.get(env_var, "").strip() or None
    path = Path(path)
    try:
        text = path.read_text().strip()
        mode = path.stat().st_mode
    except OSError as exc:
        raise FleetError(f"cannot read the HTTP token file {path}: {exc.strerror}", f"make one: {MAKE_TOKEN}") from exc
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("HTTP token file %s is readable by other users; chmod 600 it", path)
    if not text:
        raise FleetError(f"the HTTP token file {path} is empty", f"make one: {MAKE_TOKEN}")
    return text.splitlines()[0].strip()
