"""Device → fleet: the answer to a bench job (`edgeml/v1/bench_result`).

`ok` false carries a `code` (a token: `refused`, `verify_failed`, `wrong_target`, `runtime_error`, …) and a
`reason`; `ok` true carries `result`: the measurement, in `edgeml bench --json`'s words (latency per model
with p50/p90/p99 and throughput, a DDSketch of the latency per model for plots, peak RSS, the p50 ratio
against the baseline, the device's CPU and ISA, runtime versions, load and temperature where the OS
exposes them). Unsigned (the device has no fleet key); the fleet stores it against the job and device.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from edgeml.protocol.fields import Fields, header
from edgeml.protocol.kind import Kind
from edgeml.protocol.protocol_error import ProtocolError

__all__ = ["BenchResult"]

_RESULT_KEYS = 32


@dataclass(frozen=True)
class BenchResult:
    KIND: ClassVar[Kind] = Kind.BENCH_RESULT

    job_id: str
    sequence: int
    ok: bool
    at: int
    code: str = "ok"
    reason: str = ""
    result: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            **header(self.KIND),
            "job_id": self.job_id,
            "sequence": self.sequence,
            "ok": self.ok,
            "at": self.at,
            "code": self.code,
            "reason": self.reason,
            "result": self.result,
        }

    @classmethod
    def from_dict(cls, obj: Any) -> BenchResult:
        f = Fields.payload(obj, cls.KIND)
        ok = f.flag("ok")
        result = f.mapping("result", _RESULT_KEYS) if f.present("result") else None
        if ok and result is None:
            raise ProtocolError("missing_field", "bench_result.result is missing from a successful result")
        return cls(
            job_id=f.ident("job_id"),
            sequence=f.integer("sequence", 1),
            ok=ok,
            at=f.integer("at"),
            code=f.token("code"),
            reason=f.text("reason", 1024) if f.present("reason") else "",
            result=result,
        )
