"""Health gate expressions → checks a wave must pass before the rollout goes on.

    install_success>=0.98        share of exposed devices that committed the new model
    error_rate<=0.01             errors / calls on the new version
    p95_latency<=1.2*baseline    latency quantile (p50/p90/p95/p99) of the new version, against the same
                                 quantile of the baseline (devices still on the previous version)
    psi<=0.25                    worst input-feature PSI of the new version vs the manifest's reference profile

A gate that does not parse is refused with the position of the problem.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass

from edgeml.fleet.database import FleetError

__all__ = ["METRICS", "Gate", "parse_gate"]

METRICS = ("install_success", "error_rate", "p50_latency", "p90_latency", "p95_latency", "p99_latency", "psi")
_OPS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt}
_GATE = re.compile(r"^\s*([a-z0-9_]+)\s*(<=|>=|<|>)\s*([0-9]*\.?[0-9]+)\s*(\*\s*baseline)?\s*$")


@dataclass(frozen=True)
class Gate:
    text: str
    metric: str
    op: str
    threshold: float
    relative: bool  # threshold × the baseline's value of the same metric

    def limit(self, baseline: float | None) -> float | None:
        if not self.relative:
            return self.threshold
        return None if baseline is None else self.threshold * baseline

    def holds(self, value: float | None, baseline: float | None) -> bool | None:
        """True/False, or None while there is not enough data to judge."""
        limit = self.limit(baseline)
        if value is None or limit is None:
            return None
        return _OPS[self.op](value, limit)


def parse_gate(text: str) -> Gate:
    m = _GATE.match(text)
    if not m:
        pos = _first_bad_position(text)
        raise FleetError(
            f"gate {text!r} does not parse (at position {pos}: {text[pos : pos + 10]!r})",
            "write METRIC OP NUMBER or METRIC OP NUMBER*baseline, e.g. 'p95_latency<=1.2*baseline'",
        )
    metric, op, number, rel = m.groups()
    if metric not in METRICS:
        raise FleetError(f"gate {text!r}: unknown metric {metric!r}", f"metrics: {', '.join(METRICS)}")
    if rel and not metric.endswith("_latency"):
        raise FleetError(
            f"gate {text!r}: only latency gates compare with the baseline",
            f"give {metric} an absolute limit: '{metric}{op}NUMBER', without *baseline",
        )
    return Gate(text, metric, op, float(number), bool(rel))


def _first_bad_position(text: str) -> int:
    m = re.match(r"\s*[a-z0-9_]*\s*(?:<=|>=|<|>)?\s*[0-9]*\.?[0-9]*\s*(?:\*\s*(?:baseline)?)?", text)
    return m.end() if m else 0
