"""The kinds of message on the wire: one name per payload, used by topics, schemas and the codec."""

from __future__ import annotations

from enum import Enum

__all__ = ["Kind"]


class Kind(str, Enum):
    """A payload kind; its value is the `<kind>` in the payload's `schema` = "edgeml/v1/<kind>"."""

    HELLO = "hello"
    STATUS = "status"
    EVENT = "event"
    TELEMETRY = "telemetry"
    CHUNK_REQUEST = "chunk_request"
    DESIRED_STATE = "desired_state"
    BENCH_JOB = "bench_job"
    BENCH_RESULT = "bench_result"
    CHUNK = "chunk"  # binary, see chunks.py

    @property
    def schema(self) -> str:
        return f"edgeml/v1/{self.value}"
