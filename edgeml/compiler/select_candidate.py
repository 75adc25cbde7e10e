"""Measured candidates + accuracy budget → which one ships, and a reason for every verdict.

Rules: a candidate ships only within the budget (accuracy drop in points where labels exist, else a
cosine floor on every output and its worst channel); a quantized candidate ships only if it is faster
than the float model by the recipe's `min_speedup` (never slower, unless the user pinned the precision).
Among those left: the fastest (objective=latency) or the smallest (objective=size).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgeml.compiler.measure import FLOAT
from edgeml.errors import BudgetError

__all__ = [
    "Budget", "Decision", "budget_verdict", "select_candidate", "speed_reference", "worst_channel", "worst_cosine",
]  # fmt: skip


@dataclass(frozen=True)
class Budget:
    max_drop: float  # accuracy points
    min_cosine: float  # per output, where there are no labels
    min_channel_cosine: float = 0.9  # any single channel, always: catches a wiped-out channel group

    def to_dict(self) -> dict[str, float]:
        return {"max_drop": self.max_drop, "min_cosine": self.min_cosine, "min_channel_cosine": self.min_channel_cosine}


@dataclass
class Decision:
    chosen: str
    reason: str
    verdicts: dict[str, str] = field(default_factory=dict)
    within_budget: dict[str, bool] = field(default_factory=dict)
    mixed_precision: dict[str, Any] | None = None  # the accuracy-aware search, where it ran (MixedSearch.to_dict)

    def to_dict(self) -> dict[str, Any]:
        out = {"chosen": self.chosen, "reason": self.reason, "verdicts": self.verdicts}
        return out | ({"mixed_precision": self.mixed_precision} if self.mixed_precision is not None else {})


def worst_cosine(fid: dict[str, dict[str, Any]]) -> float:
    return min(f["cosine"] for f in fid.values())


def worst_channel(fid: dict[str, dict[str, Any]]) -> tuple[str, int, float]:
    name = min(fid, key=lambda n: fid[n].get("worst_channel_cosine", 1.0))
    return name, fid[name].get("worst_channel", 0), fid[name].get("worst_channel_cosine", 1.0)


def speed_reference(models: dict[str, Any]) -> str:
    """The one model every speed figure of a compile is quoted against: the target's own float build (`fp32`,
    same runtime as the candidates) where it has one, else the float source as given (on ONNX Runtime).
    Accuracy and fidelity are always quoted against the float source."""
    return "fp32" if "fp32" in models else FLOAT


def budget_verdict(m: dict[str, Any], ref: dict[str, Any], budget: Budget) -> str | None:
    """None if within budget, else why not."""
    output, channel, channel_cos = worst_channel(m["fidelity"])
    if channel_cos < budget.min_channel_cosine:
        return (
            f"output {output} channel {channel} has cosine {channel_cos:.3f} vs float (floor "
            f"{budget.min_channel_cosine:g}): that channel is destroyed even if the whole tensor looks fine"
        )
    if ref["accuracy"] is not None:
        drop = ref["accuracy"] - m["accuracy"]
        if drop > budget.max_drop:
            return (
                f"accuracy {m['accuracy']:.2f}% vs float {ref['accuracy']:.2f}%: drop {drop:.2f} points "
                f"exceeds the {budget.max_drop:g}-point budget by {drop - budget.max_drop:.2f}"
            )
        return None
    cos = worst_cosine(m["fidelity"])
    if cos < budget.min_cosine:
        return f"cosine {cos:.6f} vs float is below the {budget.min_cosine} floor"
    return None


def select_candidate(
    models: dict[str, dict[str, Any]], budget: Budget, min_speedup: float, objective: str, pinned: str | None
) -> Decision:
    ref = models[FLOAT]
    speed_ref = models[speed_reference(models)]  # NOTE: judged on the target's own runtime where it has a float build
    names = [n for n in models if n != FLOAT]
    decision = Decision(chosen="", reason="")
    passing = []
    for name in names:
        m = models[name]
        speedup = speed_ref["latency"]["p50_ms"] / m["latency"]["p50_ms"]
        miss = budget_verdict(m, ref, budget)
        decision.within_budget[name] = miss is None
        if miss:
            decision.verdicts[name] = f"rejected: {miss}"
        elif name != "fp32" and not pinned and speedup < min_speedup:
            decision.verdicts[name] = f"rejected: {speedup:.2f}× float speed on this host (needs ≥ {min_speedup:g}×)"
        else:
            decision.verdicts[name] = f"passes: {speedup:.2f}× float speed, within budget"
            passing.append(name)
    if not passing:
        raise _budget_error(models, decision, budget)
    sort_key = (
        (lambda n: models[n]["latency"]["p50_ms"]) if objective == "latency" else (lambda n: models[n]["size_bytes"])
    )
    decision.chosen = min(passing, key=sort_key)
    decision.reason = _reason(decision, models, passing, objective, pinned)
    decision.verdicts[decision.chosen] = "shipped: " + decision.verdicts[decision.chosen].removeprefix("passes: ")
    return decision


def _reason(decision: Decision, models, passing: list[str], objective: str, pinned: str | None) -> str:
    chosen = decision.chosen
    if pinned:
        speed = models[speed_reference(models)]["latency"]["p50_ms"] / models[chosen]["latency"]["p50_ms"]
        slower = " — slower than float on this host, shipped because the precision was pinned" if speed < 1 else ""
        return f"precision pinned to {chosen} and within budget{slower}"
    rejected = [n for n in decision.verdicts if n not in passing]
    if chosen == "fp32" and rejected:
        return "float kept: " + "; ".join(f"{n} {decision.verdicts[n].removeprefix('rejected: ')}" for n in rejected)
    return f"{'fastest' if objective == 'latency' else 'smallest'} of the candidates within budget"


def _budget_error(models, decision: Decision, budget: Budget) -> BudgetError:
    lines = "; ".join(f"{n}: {v.removeprefix('rejected: ')}" for n, v in decision.verdicts.items())
    return BudgetError(
        f"no candidate meets the accuracy budget ({lines})",
        "loosen --max-drop / --min-cosine, let edgeml choose with --precision auto, or see `edgeml explain` "
        "for the layers that cost most",
    )
