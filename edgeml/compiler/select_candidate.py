"""Measured candidates + accuracy budget → which one ships, and a reason for every verdict.

Rules: a candidate ships only within the budget — the accuracy drop in points where labels exist, else the
cosine floor on every channel of every output (each channel's cosine over all samples: the figure that sees a
destroyed channel and a one-number output that moved); always a floor on any channel's cosine, and on every
probability output (sigmoid / softmax, read from the float values) the share of decisions that agree with
float (p > 0.5, or top-1). A quantized candidate ships only if it is faster
than the float model by the recipe's `min_speedup` (never slower, unless the user pinned the precision).
Among those left: the fastest (objective=latency) or the smallest (objective=size).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from edgeml.compiler.evaluate import cosine_text
from edgeml.compiler.measure import FLOAT
from edgeml.errors import BudgetError

__all__ = [
    "DEFAULT_MIN_AGREEMENT", "Budget", "Decision", "budget_verdict", "select_candidate", "speed_reference",
    "worst_agreement", "worst_channel", "worst_cosine",
]  # fmt: skip

DEFAULT_MIN_AGREEMENT = 0.99


@dataclass(frozen=True)
class Budget:
    max_drop: float  # accuracy points
    min_cosine: float  # every channel of every output (over all samples), where there are no labels
    min_channel_cosine: float = 0.9  # any single channel, always: catches a wiped-out channel group
    min_agreement: float = DEFAULT_MIN_AGREEMENT  # share of a probability output's decisions agreeing, always

    def to_dict(self) -> dict[str, float]:
        return {
            "max_drop": self.max_drop,
            "min_cosine": self.min_cosine,
            "min_channel_cosine": self.min_channel_cosine,
            "min_agreement": self.min_agreement,
        }


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
    """The lowest cosine of any channel of any output, each over all samples (the budget's cosine figure)."""
    return min(min(f["cosine"], f.get("worst_channel_cosine", 1.0)) for f in fid.values())


def worst_agreement(fid: dict[str, dict[str, Any]]) -> tuple[str, float, str] | None:
    """(output, share of decisions agreeing with float, the decision) of the worst probability output; None
    where no output decides anything."""
    deciding = [n for n, f in fid.items() if "decision_agreement" in f]
    if not deciding:
        return None
    name = min(deciding, key=lambda n: fid[n]["decision_agreement"])
    return name, fid[name]["decision_agreement"], fid[name].get("decision", "")


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
        shown = f"{channel_cos:.3f}" if round(channel_cos, 3) < budget.min_channel_cosine else cosine_text(channel_cos)
        return (
            f"output {output} channel {channel} has cosine {shown} vs float (floor "
            f"{budget.min_channel_cosine}): that channel is destroyed even if the whole tensor looks fine"
        )
    agreement = worst_agreement(m["fidelity"])
    if agreement is not None and agreement[1] < budget.min_agreement:
        name, share, decision = agreement
        return (
            f"output {name} decides {100 * (1 - share):.2f}% of samples differently from float ({decision}: "
            f"{100 * share:.2f}% agree, floor {100 * budget.min_agreement:g}%); {_figures(m['fidelity'][name])}"
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
        name = min(m["fidelity"], key=lambda n: worst_cosine({n: m["fidelity"][n]}))
        f = m["fidelity"][name]
        where = f"output {name}" + (f" channel {f['worst_channel']}" if f.get("channels", 1) > 1 else "")
        return (
            f"{where} has cosine {cosine_text(cos)} vs float over all samples, below the {budget.min_cosine} floor; "
            f"{_figures(f)}"
        )
    return None


def _figures(f: dict[str, Any]) -> str:
    """What else moved on that output: SNR and the largest error (absolute, and of the channel's float peak)."""
    parts = [f"SNR {f['sqnr_db']:.1f} dB"] if "sqnr_db" in f else []
    if "max_abs_err" in f:
        rel = f" ({100 * f['max_rel_err']:.1f}% of its float peak)" if "max_rel_err" in f else ""
        parts.append(f"max error {f['max_abs_err']:.3g}{rel}")
    return ", ".join(parts) or "no other figure"


def select_candidate(
    models: dict[str, dict[str, Any]],
    budget: Budget,
    min_speedup: float,
    objective: str,
    pinned: str | None,
    where: str = "this host",
) -> Decision:
    """`where`: the place the candidates' latency was measured, as the verdicts name it ("device pi-3")."""
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
            decision.verdicts[name] = f"rejected: {speedup:.2f}× float speed on {where} (needs ≥ {min_speedup:g}×)"
        else:
            on = "" if where == "this host" else f" on {where}"
            decision.verdicts[name] = f"passes: {speedup:.2f}× float speed{on}, within budget"
            passing.append(name)
    if not passing:
        raise _budget_error(models, decision, budget)
    sort_key = (
        (lambda n: models[n]["latency"]["p50_ms"]) if objective == "latency" else (lambda n: models[n]["size_bytes"])
    )
    decision.chosen = min(passing, key=sort_key)
    decision.reason = _reason(decision, models, passing, objective, pinned, where)
    decision.verdicts[decision.chosen] = "shipped: " + decision.verdicts[decision.chosen].removeprefix("passes: ")
    return decision


def _reason(decision: Decision, models, passing: list[str], objective: str, pinned: str | None, where: str) -> str:
    chosen = decision.chosen
    if pinned:
        speed = models[speed_reference(models)]["latency"]["p50_ms"] / models[chosen]["latency"]["p50_ms"]
        slower = f" — slower than float on {where}, shipped because the precision was pinned" if speed < 1 else ""
        return f"precision pinned to {chosen} and within budget{slower}"
    rejected = [n for n in decision.verdicts if n not in passing]
    if chosen == "fp32" and rejected:
        return "float kept: " + "; ".join(f"{n} {decision.verdicts[n].removeprefix('rejected: ')}" for n in rejected)
    return f"{'fastest' if objective == 'latency' else 'smallest'} of the candidates within budget"


def _budget_error(models, decision: Decision, budget: Budget) -> BudgetError:
    lines = "; ".join(f"{n}: {v.removeprefix('rejected: ')}" for n, v in decision.verdicts.items())
    return BudgetError(
        f"no candidate meets the accuracy budget ({lines})",
        "loosen --max-drop / --min-cosine / --min-agreement, let edgeml choose with --precision auto, or see "
        "`edgeml explain` for the layers that cost most",
    )
