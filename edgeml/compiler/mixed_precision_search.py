"""An INT8 model that misses the accuracy budget → a cheap set of layers to keep in float that meets it.

1. Rank (measured, not estimated). Each adjustable INT8 layer (quantized weights, or an output rounded with
   its own scale) is kept in float on its own, and the model's output SQNR vs float is measured: the dB it
   recovers is that layer's sensitivity. Per-layer activation SQNR was tried as the ranking and rejected: on
   the digits CNNs it is cumulative (every later layer looks worse), and it cannot see that keeping some
   layers in float makes the output *worse* (measured: −0.3 dB for the wide CNN's third conv). A model with
   more than `max_ranked` (default `MAX_RANKED`) such layers ranks only those its per-layer report marks
   worst (most SQNR lost at the layer itself: QDQ models and OpenVINO IRs); where there is no report, the
   first in the order the target lists them (lowest weight SQNR first for dynamic INT8, whose tries are cheap
   enough that the target ranks up to 48: every layer of MiniLM; graph order on the TFLite targets).
   Groups are ranked too, always (never cut): the float head, the weightless ops between the last weighted layer
   and the outputs (edgeml/compiler/float_head.py), kept in float together as detector users do by hand.
   The order is what the budget judges, not SQNR alone: first those that meet the budget on their own
   (cheapest first), then by how much nearer the missed floors each brings the model (a channel's cosine, a
   decision agreement, the cosine floor: `_shortfall`), then by output SQNR recovered. Output SQNR cannot see
   a dead score channel: on a detection head the Concat that restores it from cosine 0 to 0.998 recovers 0 dB
   while the convs recover +3.6 and +1.6 dB, and the Concat fell below the 0.05 dB cut. Ranking stops at a
   layer or group that meets the budget without weights: nothing can cost less. Each ranked measurement is
   also a try, so the single-layer mix it measured is not built again.
2. Search. Keep the top 1, 2, 3, 4, 6, 8, 12, … sensitive layers (those that recover ≥ 0.05 dB, or bring a
   missed floor nearer) in float until a mix meets the budget, then bisect between the last miss and the
   first hit: the fewest layers.
3. Cheapen. What a layer costs in float is its weight count (`LayerSensitivity.cost`: bytes, and a proxy
   for the work it adds). A layer without weights (a ReduceMean, an Add rounded anew) costs 0: it adds no
   bytes, and its float work is small next to a weighted layer's, so it is the first offered in a swap (an
   OpenVINO transformer's activation × activation MatMuls have real work and no weights: not measured yet).
   With the tries left, each layer of the mix, costliest first, is swapped for cheaper sensitive layers from
   outside it (most dB per weight first, while together they cost less than it), and the first swap that
   meets the budget is kept, so the mix only ever gets cheaper. Digits on cpu-openvino: at cosine 0.9999
   Gemm + conv3 (18,432 of the 23,824 weights) becomes Gemm + ReduceMean + conv1, 99.7 → 44.6 KiB (2 more
   tries); at a 0.3-point budget, Gemm + ReduceMean + conv1 + conv2, 54.9 KiB (3 more). MiniLM: the try left
   misses; same mix.
   Ordering the search itself by dB per weight was measured and rejected: per-layer gains do not add up, and
   the cheap layers' add up least. On MiniLM (cpu-ort, from dynamic INT8) it kept 16 layers at cosine 0.998
   (37.2 MiB, 1.37× fp32) where gain order keeps 10 (34.7 MiB, 1.44×), and 19 vs 13 at 0.999 (41.0 vs
   38.4 MiB); a knapsack on predicted noise, and gain/√weights, kept 13–17: never fewer weights than gain order.
Every mix is judged on the real budget (accuracy drop where labels exist, else the cosine floors) by the
same evaluation the selection uses. At most `MAX_TRIES` mixes are built in all. A mix leaves at least one
layer in INT8: one with every layer in float is the float model, which the fp32 candidate already is.

A try costs one quantization (cpu-ort reuses its calibration ranges; NNCF recalibrates, ~1 s on digits, ~10 s
on MiniLM; dynamic INT8 needs no calibration, ~1.9 s on MiniLM; litert-torch PT2E recalibrates and converts,
~8 s on digits) and one pass over the evaluation set.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from edgeml.compiler.build_candidate import Built
from edgeml.compiler.candidate_evaluator import CandidateEvaluator
from edgeml.compiler.quantized_layers import QuantizedLayer
from edgeml.compiler.select_candidate import Budget, budget_verdict, worst_agreement, worst_channel, worst_cosine

__all__ = ["MAX_RANKED", "MAX_TRIES", "LayerSensitivity", "MixTry", "MixedSearch", "search_mixed_precision"]

MAX_RANKED = 24
MAX_TRIES = 10
_MIN_GAIN_DB = 0.05  # a layer whose float fallback recovers less than this is not worth its cost…
_MIN_SHORTFALL_GAIN = 1e-3  # … unless it brings a missed floor (cosine, agreement) this much nearer


@dataclass(frozen=True)
class LayerSensitivity:
    layer: str
    op: str
    sqnr_db: float  # the model's output SQNR vs float with only this layer kept in float
    gain_db: float  # … minus the all-INT8 output SQNR
    cosine: float
    accuracy: float | None
    cost: int = 0  # what keeping it in float costs: its weight elements (0: a layer without weights)
    members: tuple[str, ...] = ()  # a group kept in float together (the float head): its node names
    shortfall_gain: float = 0.0  # how much nearer the budget's missed floors it gets (see `_shortfall`)
    meets: bool = False  # in float on its own, the model meets the budget

    @property
    def keeps(self) -> tuple[str, ...]:
        return self.members or (self.layer,)

    @property
    def gain_per_weight(self) -> float:
        return self.gain_db / max(self.cost, 1)

    @property
    def worth_keeping(self) -> bool:
        """It recovers output SQNR, or moves a missed floor (a channel's cosine, an agreement) toward the budget."""
        return self.meets or self.gain_db >= _MIN_GAIN_DB or self.shortfall_gain >= _MIN_SHORTFALL_GAIN

    def describe(self) -> str:
        group = f" [{', '.join(self.members)}]" if self.members else ""
        meets = "; meets the budget on its own" if self.meets else ""
        return (
            f"{self.layer}{group} ({self.op}, {self.gain_db:+.1f} dB output SQNR in float; worst channel cosine "
            f"{self.cosine:.3f}{meets})"
        )


@dataclass(frozen=True)
class MixTry:
    keep_float: tuple[str, ...]
    sqnr_db: float
    cosine: float
    accuracy: float | None
    miss: str | None  # None: within budget

    def describe(self) -> str:
        quality = f"accuracy {self.accuracy:.2f}%" if self.accuracy is not None else f"cosine {self.cosine:.6f}"
        return f"{len(self.keep_float)} in float: {quality}, {'within budget' if self.miss is None else 'misses'}"


@dataclass(frozen=True)
class MixedSearch:
    base_sqnr_db: float
    base_miss: str
    ranking: tuple[LayerSensitivity, ...]  # every layer measured, most sensitive first (gains ≤ 0 included)
    tries: tuple[MixTry, ...]
    keep_float: tuple[str, ...] | None  # None: no mix met the budget
    unranked: int = 0  # adjustable layers left out of the ranking (over MAX_RANKED)
    seconds: float = 0.0
    notes: tuple[str, ...] = field(default_factory=tuple)
    kept: tuple[str, ...] = ()  # the ranked layers (or groups) behind keep_float, which names their nodes

    @property
    def found(self) -> bool:
        return self.keep_float is not None

    @property
    def sensitive(self) -> tuple[LayerSensitivity, ...]:
        """The layers worth keeping in float: those that recover at least `_MIN_GAIN_DB` or bring a missed floor
        nearer."""
        return tuple(s for s in self.ranking if s.worth_keeping)

    def layer_costs(self, limit: int = 5) -> str:
        """The sensitive layers and what INT8 costs each: for verdicts and errors."""
        return ", ".join(s.describe() for s in self.sensitive[:limit]) or "no layer recovers anything in float"

    def summary(self) -> str:
        if self.keep_float is None:
            best = max(self.tries, key=lambda t: t.sqnr_db, default=None)
            closest = f"; closest: {best.describe()} ({best.miss})" if best else ""
            stopped = f" ({self.notes[0]})" if self.notes else ""
            return (
                f"no mix of the {len(self.sensitive)} sensitive layers kept in float meets the budget in "
                f"{len(self.tries)} tries{stopped}{closest}; all-INT8 missed: {self.base_miss}. Layers and what "
                f"INT8 costs them: {self.layer_costs()}"
            )
        if not self.keep_float:
            return "all-INT8 already meets the budget: no layer needs float"
        gains = {s.layer: s for s in self.ranking}
        units = self.kept or self.keep_float
        kept = ", ".join(gains[n].describe() if n in gains else n for n in units)
        return f"keeps {len(units)} of {len(self.sensitive)} sensitive layers in float: {kept}"

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self) | {"found": self.found, "summary": self.summary()}
        return json.loads(json.dumps(d))  # tuples → lists: the same dict as one read back from the cache

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MixedSearch:
        return cls(
            base_sqnr_db=d["base_sqnr_db"],
            base_miss=d["base_miss"],
            ranking=tuple(LayerSensitivity(**{**s, "members": tuple(s.get("members", ()))}) for s in d["ranking"]),
            tries=tuple(MixTry(**{**t, "keep_float": tuple(t["keep_float"])}) for t in d["tries"]),
            keep_float=None if d["keep_float"] is None else tuple(d["keep_float"]),
            unranked=d.get("unranked", 0),
            seconds=d.get("seconds", 0.0),
            notes=tuple(d.get("notes", ())),
            kept=tuple(d.get("kept", ())),
        )


def search_mixed_precision(
    base: Built,
    layers: Sequence[QuantizedLayer],
    build: Callable[[tuple[str, ...]], Built],
    evaluator: CandidateEvaluator,
    budget: Budget,
    worst_first: Sequence[str] = (),
    max_ranked: int = MAX_RANKED,
    time_budget_s: float | None = None,
) -> MixedSearch:
    """`build(keep_float)` makes the INT8 candidate with those layers in float; `worst_first` orders the
    layers for the cut to `max_ranked` (the per-layer report's order; layers it does not name keep their
    order in `layers`). Past `time_budget_s` the search stops with the cheapest mix that met the budget so far
    (or none), and says so in its notes."""
    started = time.perf_counter()
    deadline = math.inf if time_budget_s is None else started + time_budget_s
    base_m = evaluator.metrics(base)
    base_miss = budget_verdict(base_m, evaluator.float_metrics, budget) or ""
    if not base_miss:
        return MixedSearch(base_m["sqnr_db"], "", (), (), (), seconds=round(time.perf_counter() - started, 3))
    adjustable = _to_rank(layers, worst_first, max_ranked)
    judge = _Judge(evaluator, budget, base_m)
    ranking, singles = _rank(adjustable, build, judge, deadline)
    sensitive = [s for s in ranking if s.worth_keeping]
    tries: list[MixTry] = []
    met: dict[frozenset[str], bool] = {}  # each mix is built once, whichever step asks

    def attempt(mix: Sequence[LayerSensitivity]) -> bool:
        keep = _nodes(s for s in sensitive if s in mix)  # in rank order, whatever order the mix came in
        if frozenset(keep) in singles and frozenset(keep) not in met:  # NOTE: measured while ranking
            tries.append(singles[frozenset(keep)])
            met[frozenset(keep)] = tries[-1].miss is None
        if frozenset(keep) not in met:
            if time.perf_counter() >= deadline:
                raise _OutOfTime
            m = evaluator.metrics(build(keep))
            miss = budget_verdict(m, evaluator.float_metrics, budget)
            tries.append(MixTry(keep, m["sqnr_db"], worst_cosine(m["fidelity"]), m["accuracy"], miss))
            met[frozenset(keep)] = miss is None
        return met[frozenset(keep)]

    total = sum(1 for la in layers if la.adjustable)
    notes: tuple[str, ...] = ()
    try:
        best = _smallest_passing_prefix(min(len(sensitive), total - 1), lambda k: attempt(sensitive[:k]), MAX_TRIES)
        mix = None if best is None else _cheapen(sensitive[:best], sensitive, attempt, lambda: MAX_TRIES - len(tries))
    except _OutOfTime:
        measured = [*tries, *singles.values()]
        passing = [[s for s in sensitive if set(s.keeps) <= set(t.keep_float)] for t in measured if t.miss is None]
        mix = min(passing, key=lambda units: sum(s.cost for s in units), default=None)
    free = next((s for s in ranking if s.meets and s.cost == 0), None)
    if free is not None and len(ranking) < len(adjustable):
        notes = (f"ranking stopped after {free.layer}: it meets the budget without keeping any weights in float",)
    elif len(ranking) < len(adjustable) or time.perf_counter() >= deadline:
        notes = (
            f"stopped at its {time_budget_s:g} s budget (-O search_budget_s): {len(ranking)} of {len(adjustable)} "
            f"layers ranked, {len(tries)} mixes tried",
        )
    return MixedSearch(
        base_sqnr_db=base_m["sqnr_db"],
        base_miss=base_miss,
        ranking=tuple(ranking),
        tries=tuple(tries),
        keep_float=None if mix is None else _nodes(s for s in sensitive if s in mix),
        unranked=total - len(adjustable),
        seconds=round(time.perf_counter() - started, 3),
        notes=notes,
        kept=() if mix is None else tuple(s.layer for s in sensitive if s in mix),
    )


def _nodes(units: Iterable[LayerSensitivity]) -> tuple[str, ...]:
    """The node names the ranked layers and groups keep in float, each once."""
    return tuple(dict.fromkeys(n for s in units for n in s.keeps))


class _OutOfTime(Exception):
    """The search's time budget ran out before its next build."""


def _to_rank(layers: Sequence[QuantizedLayer], worst_first: Sequence[str], limit: int) -> list[QuantizedLayer]:
    """Groups (the float head) first, always ranked; then the layers in the report's order (the most SQNR lost at
    the layer itself first: where the damage starts, measured first when the time budget cannot rank them all),
    cut to `limit`."""
    groups = [la for la in layers if la.adjustable and la.members]
    adjustable = [la for la in layers if la.adjustable and not la.members]
    order = {name: i for i, name in enumerate(worst_first)}
    return groups + sorted(adjustable, key=lambda la: order.get(la.name, len(order)))[:limit]


class _Judge:
    """A try's metrics → how far it stays from the budget's floors, against the all-INT8 base's distance."""

    def __init__(self, evaluator: CandidateEvaluator, budget: Budget, base_m: dict[str, Any]) -> None:
        self.evaluator, self.budget = evaluator, budget
        self.base_shortfall, self.base_sqnr = _shortfall(base_m, budget), base_m["sqnr_db"]

    def metrics(self, built: Built) -> tuple[dict[str, Any], float, bool]:
        """(metrics, shortfall recovered vs all-INT8, within budget)."""
        m = self.evaluator.metrics(built)
        meets = budget_verdict(m, self.evaluator.float_metrics, self.budget) is None
        return m, round(self.base_shortfall - _shortfall(m, self.budget), 6), meets


def _shortfall(m: dict[str, Any], budget: Budget) -> float:
    """How far below its floors a model stays, summed: the worst channel's cosine under `min_channel_cosine`, the
    worst probability output's agreement under `min_agreement`, and (without labels) the worst cosine under
    `min_cosine`. Output SQNR cannot see a destroyed score channel (+0.2 dB for the Concat that restores it from
    cosine 0 to 1.0 on the synthetic detection head); these figures are what the budget judges."""
    fid = m["fidelity"]
    cos = worst_cosine(fid)
    agreement = worst_agreement(fid)
    short = max(0.0, budget.min_channel_cosine - worst_channel(fid)[2])
    short += max(0.0, budget.min_agreement - agreement[1]) if agreement is not None else 0.0
    return short + (max(0.0, budget.min_cosine - cos) if m.get("accuracy") is None else 0.0)


def _rank(layers, build, judge: _Judge, deadline: float) -> tuple[list[LayerSensitivity], dict[frozenset, MixTry]]:
    """Each layer (or group) in float on its own, measured; ordered: those that meet the budget alone (cheapest
    first), then by the missed floors' shortfall each recovers, then by output SQNR recovered. Also each
    measurement as a try. Ranking stops at one that meets the budget at no weight cost: none can be cheaper."""
    found, singles = [], {}
    for layer in layers:
        if time.perf_counter() >= deadline:
            break  # NOTE: the layers ranked so far still make a search; the note says how many were left out
        m, recovered, meets = judge.metrics(build(layer.keeps))
        found.append(
            LayerSensitivity(
                layer.name, layer.label, m["sqnr_db"], round(m["sqnr_db"] - judge.base_sqnr, 3),
                worst_cosine(m["fidelity"]), m["accuracy"], layer.weights,
                members=layer.members, shortfall_gain=recovered, meets=meets,
            )
        )  # fmt: skip
        miss = budget_verdict(m, judge.evaluator.float_metrics, judge.budget)
        singles[frozenset(layer.keeps)] = MixTry(layer.keeps, m["sqnr_db"], found[-1].cosine, m["accuracy"], miss)
        if meets and layer.weights == 0:
            break
    order = sorted(found, key=lambda s: (not s.meets, s.cost if s.meets else 0, -s.shortfall_gain, -s.gain_db))
    return order, singles


def _smallest_passing_prefix(n: int, passes: Callable[[int], bool], max_tries: int) -> int | None:
    """Grow k through 1, 2, 3, 4, 6, 8, 12, … (≤ n) until `passes(k)`, then bisect down; None if none passes."""
    low, high, tried, k = 0, None, 0, 1  # low: the largest k known to miss
    while k <= n and tried < max_tries:
        tried += 1
        if passes(k):
            high = k
            break
        low = k
        if k == n:
            break
        k = min(n, k + 1 if k < 4 else k + k // 2)
    while high is not None and high - low > 1 and tried < max_tries:
        mid = (low + high) // 2
        tried += 1
        if passes(mid):
            high = mid
        else:
            low = mid
    return high


def _cheapen(
    mix: Sequence[LayerSensitivity],
    sensitive: Sequence[LayerSensitivity],
    passes: Callable[[Sequence[LayerSensitivity]], bool],
    tries_left: Callable[[], int],
) -> list[LayerSensitivity]:
    """`mix` meets the budget; swap each of its layers, costliest first, for cheaper ones from outside it (most dB
    per weight first, while together they cost less than it) and keep the first swap that `passes`."""
    mix = list(mix)
    for dear in sorted(mix, key=lambda s: (-s.cost, s.gain_db)):
        rest = [s for s in mix if s is not dear]
        spare = sorted((s for s in sensitive if s not in mix), key=lambda s: -s.gain_per_weight)
        added: list[LayerSensitivity] = []
        for s in spare:
            if sum(a.cost for a in added) + s.cost >= dear.cost:
                continue
            if tries_left() <= 0:
                return mix
            added.append(s)
            if passes(rest + added):
                mix = rest + added
                break
    return mix
