"""`--canary 2% --waves 10%,50%,100% --bake 10m --deadline 30m --gate …` → a validated RolloutPlan.

Wave sizes are cumulative shares of the devices the selector matched when the rollout was created (the
canary is wave 0). A wave passes once every exposed device finished (or hit its deadline, which counts as
a failed install), the bake time has run from that moment, and every gate holds. It fails at once, settled or
not, when a gate is already violated by the devices that report: install_success that cannot be reached any
more, or a telemetry gate measured on at least `min_sample` reporting devices (fewer when the exposed waves
hold fewer). Without an install_success gate, `install_success>=0.5` is added. `allow_rollback`: the
operator chose to take devices to a release below the one the fleet declared good (signed, audited).
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass
from typing import Any

from edgeml.fleet.database import FleetError
from edgeml.fleet.gates import Gate, parse_gate

__all__ = [
    "DEFAULT_INSTALL_GATE",
    "DEFAULT_MIN_SAMPLE",
    "DEFAULT_WAVES",
    "RolloutPlan",
    "parse_duration",
    "parse_percent",
]

# NOTE: a wave where half the installs fail stops the rollout even when the operator set no gate (like
# hawkBit's default error threshold); give any install_success gate to choose another threshold
DEFAULT_INSTALL_GATE = "install_success>=0.5"
DEFAULT_WAVES = "25%,100%"  # after the canary, unless the canary is already 100 %
DEFAULT_MIN_SAMPLE = 3  # devices whose telemetry judges a gate before a wave settled

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, None: 1}


def parse_duration(text: str) -> float:
    m = _DURATION.match(text.strip())
    if not m:
        raise FleetError(f"duration {text!r} is not like 90s, 10m or 1h", "a number and ms, s, m or h, e.g. 10m")
    return float(m.group(1)) * _UNITS[m.group(2)]


def parse_percent(text: str) -> float:
    value = text.strip().removesuffix("%")
    try:
        share = float(value) / 100.0
    except ValueError:
        raise FleetError(f"{text!r} is not a percentage like 10%", "a share of the devices, e.g. 5% or 25%") from None
    if not 0 < share <= 1:
        raise FleetError(f"{text!r} must be above 0% and at most 100%", "e.g. 5% for the canary, 100% for all")
    return share


@dataclass(frozen=True)
class RolloutPlan:
    waves: tuple[float, ...]  # cumulative shares, canary first, last is 1.0
    bake_s: float
    deadline_s: float
    gates: tuple[Gate, ...]
    min_devices_per_wave: int = 1
    min_sample: int = DEFAULT_MIN_SAMPLE
    allow_rollback: bool = False

    @classmethod
    def build(
        cls,
        canary: str,
        waves: str,
        bake: str,
        deadline: str,
        gates: list[str],
        min_sample: int = DEFAULT_MIN_SAMPLE,
        allow_rollback: bool = False,
    ) -> RolloutPlan:
        first = parse_percent(canary)
        if first == 1.0 and waves == DEFAULT_WAVES:
            waves = ""  # NOTE: a 100 % canary is the whole rollout; the default waves only follow a partial one
        shares = [first] + [parse_percent(w) for w in waves.split(",") if w.strip()]
        if any(b <= a for a, b in itertools.pairwise(shares)):
            raise FleetError(
                f"wave sizes {shares} must grow (they are cumulative shares, canary first)",
                "give each wave a larger share than the one before, e.g. --canary 5% --waves 25%,100%",
            )
        if shares[-1] != 1.0:
            shares.append(1.0)
        parsed = tuple(parse_gate(g) for g in gates)
        if not any(g.metric == "install_success" for g in parsed):
            parsed += (parse_gate(DEFAULT_INSTALL_GATE),)
        if isinstance(min_sample, bool) or not isinstance(min_sample, int) or min_sample < 1:
            raise FleetError(
                f"min sample {min_sample!r} is not a whole number of devices ≥ 1",
                "how many reporting devices may fail a gate before the wave settled, e.g. --min-sample 3",
            )
        return cls(tuple(shares), parse_duration(bake), parse_duration(deadline), parsed, 1, min_sample, allow_rollback)

    def to_dict(self) -> dict[str, Any]:
        return {
            "waves": list(self.waves),
            "bake_s": self.bake_s,
            "deadline_s": self.deadline_s,
            "gates": [g.text for g in self.gates],
            "min_devices_per_wave": self.min_devices_per_wave,
            "min_sample": self.min_sample,
            "allow_rollback": self.allow_rollback,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RolloutPlan:
        gates = tuple(parse_gate(g) for g in d["gates"])
        return cls(
            tuple(d["waves"]), d["bake_s"], d["deadline_s"], gates, d.get("min_devices_per_wave", 1),
            d.get("min_sample", DEFAULT_MIN_SAMPLE), bool(d.get("allow_rollback", False)),
        )  # fmt: skip
