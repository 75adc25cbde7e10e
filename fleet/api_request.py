"""One HTTP request as a route handler reads it (path parameters, query, a capped JSON or file body), and
`ApiError`, the HTTP answer a handler gives up with (status, code, message, fix)."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from email.message import Message
from typing import Any, BinaryIO

__all__ = ["ApiError", "ApiRequest"]

_CHUNK = 1 << 20
JSON_TYPES = ("application/json", "")


class ApiError(Exception):
    """An HTTP error answer: `{"error": code, "message": …, "fix": …}` with `status`."""

    def __init__(self, status: int, code: str, message: str, fix: str | None = None, headers=None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.fix = status, code, message, fix
        self.headers: dict[str, str] = dict(headers or {})

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "message": self.message, "fix": self.fix}


@dataclass
class ApiRequest:
    method: str
    path: str
    headers: Message
    rfile: BinaryIO
    max_json_bytes: int
    max_upload_bytes: int
    params: dict[str, str] = field(default_factory=dict)  # from the route template: {rollout_id} …
    query: dict[str, list[str]] = field(default_factory=dict)
    role: str | None = None
    consumed: int = 0  # body bytes read so far

    def unread(self) -> int:
        """Body bytes the handler left unread (the server drains them before closing, so the client hears why)."""
        try:
            return max(0, int(self.headers.get("Content-Length") or 0) - self.consumed)
        except ValueError:
            return 0

    def query_values(self, allowed: tuple[str, ...]) -> dict[str, list[str]]:
        unknown = sorted(set(self.query) - set(allowed))
        if unknown:
            raise ApiError(400, "invalid", f"unknown query parameter(s) {unknown}", f"use {', '.join(allowed)}")
        return self.query

    def json(self, required: tuple[str, ...] = (), optional: dict[str, Any] | None = None) -> dict[str, Any]:
        """The body as a JSON object with exactly these fields (optional ones get their defaults)."""
        optional = optional or {}
        body = self._json_body()
        unknown = sorted(set(body) - set(required) - set(optional))
        missing = [name for name in required if name not in body]
        if unknown or missing:
            problem = f"unknown field(s) {unknown}" if unknown else f"missing field(s) {missing}"
            fields = ", ".join([*required, *optional])
            raise ApiError(400, "invalid", f"{problem} in the {self.method} {self.path} body", f"fields: {fields}")
        return optional | body

    def _json_body(self) -> dict[str, Any]:
        media = self.media_type()
        if media not in JSON_TYPES:
            raise ApiError(415, "unsupported_media_type", f"body is {media}, not JSON", "send application/json")
        raw = self._read(self.max_json_bytes)
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ApiError(400, "malformed_json", f"the body is not valid JSON: {exc}", "send a JSON object") from None
        if not isinstance(body, dict):
            raise ApiError(
                400, "malformed_json", f"the body is a JSON {type(body).__name__}, not an object", "send a JSON object"
            )
        return body

    def media_type(self) -> str:
        return (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()

    def content_length(self, limit: int, required: bool = False) -> int:
        if self.headers.get("Transfer-Encoding") or (required and self.headers.get("Content-Length") is None):
            raise ApiError(411, "length_required", "the request has no Content-Length", "send the body in one piece")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise ApiError(400, "invalid", "Content-Length is not a number", "send the body's size in bytes") from None
        if length < 0:
            raise ApiError(400, "invalid", "Content-Length is negative", "send the body's size in bytes")
        if length > limit:
            raise ApiError(
                413,
                "payload_too_large",
                f"the body has {length} bytes; this route takes at most {limit}",
                "send less; an artifact larger than --http-max-upload-mb is published with `edgeml fleet publish`",
            )
        return length

    def _read(self, limit: int) -> bytes:
        length = self.content_length(limit)
        data = self.rfile.read(length) if length else b""
        self.consumed += len(data)
        if len(data) != length:
            raise ApiError(
                400, "invalid", f"the body ended after {len(data)} of {length} bytes", "send the whole body again"
            )
        return data

    def save_body(self, path: str | os.PathLike[str]) -> int:
        """Stream the body (at most `max_upload_bytes`) into `path`; return its size."""
        length, done = self.content_length(self.max_upload_bytes, required=True), 0
        with open(path, "wb") as f:
            while done < length:
                chunk = self.rfile.read(min(_CHUNK, length - done))
                if not chunk:
                    raise ApiError(
                        400, "invalid", f"the upload ended after {done} of {length} bytes", "send the whole file again"
                    )
                f.write(chunk)
                done += len(chunk)
                self.consumed += len(chunk)
        return done
