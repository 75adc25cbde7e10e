"""Prepared model + the target's candidate plans → every candidate built, measured and judged; the one that
ships; and `explain.json`, the record of why.

    build candidates → (int8-mixed search where the all-INT8 candidate misses the budget) → measure → select
    → explain

Per-layer tables are computed for every QDQ candidate — the shipped one and the rejected ones — so a float
artifact still explains why INT8 was rejected, layer by layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from edgeml.calibration.dataset import Dataset
from edgeml.compiler.accuracy_aware import MIXED, AccuracyAwareStep
from edgeml.compiler.build_candidate import Built, build_candidate, onnx_build
from edgeml.compiler.content_cache import Blob, ContentCache
from edgeml.compiler.device_latency import device_name
from edgeml.compiler.explain_report import explain_report
from edgeml.compiler.layer_numerics import LayerNumerics
from edgeml.compiler.layer_tables import LayerTables
from edgeml.compiler.measure import Measurements, measure
from edgeml.compiler.passes.base import PassContext
from edgeml.compiler.plan import Plan
from edgeml.compiler.progress import Progress
from edgeml.compiler.run_passes import PassRecord
from edgeml.compiler.select_candidate import Budget, Decision, select_candidate
from edgeml.errors import BudgetError

if TYPE_CHECKING:
    from edgeml.targets.target import Target

__all__ = ["Chosen", "choose_candidate"]


@dataclass
class Chosen:
    built: dict[str, Built]
    records: dict[str, list[PassRecord]]
    measured: Measurements
    decision: Decision
    explain: dict[str, Any]


def choose_candidate(
    *,
    target: Target,
    recipe: Any,
    plan: Plan,
    prepared: Blob,
    source_onnx: Blob,
    calib: Dataset,
    evalset: Dataset,
    budget: Budget,
    ctx: PassContext,
    cache: ContentCache,
    threads: int,
    progress: Progress,
    device_latency: Callable[[Measurements, dict[str, Built], Built], Measurements] | None = None,
) -> Chosen:
    """`device_latency`: where given, the candidates' latency timed on a device replaces the host's before the
    decision (device_latency.py); without it the host's figures decide."""
    digest = calib.digest()
    built, records = {}, {}
    for name, cand_plan in plan.candidates.items():
        built[name], records[name] = build_candidate(
            prepared, cand_plan, target.spec, ctx, cache, progress, digest, f"[{name}] "
        )
    source = onnx_build(source_onnx, "model.onnx")
    pinned = None if recipe.precision == "auto" else recipe.precision
    tables = LayerTables(prepared, calib, ctx.signature, cache)
    mixed = AccuracyAwareStep(
        target, dict(plan.candidates), recipe, prepared, source, evalset, budget, ctx, cache, digest, threads,
        progress,
    )  # fmt: skip
    base = mixed.base
    analysed: dict[str, Built] = {}  # candidates not shipped as such whose layers explain.json still reports

    def measure_all() -> Measurements:
        return measure(source, built, calib, evalset, threads, ctx.scratch, cache, progress)

    if pinned == MIXED:  # NOTE: pinned, only the mix is measured; the all-INT8 base is the search's starting point
        analysed[base] = built.pop(base)
        mixed.worst_first = _costliest_first(tables.of(analysed[base]))
        built = {MIXED: mixed.run(analysed[base], required=True)}
    measured = measure_all()
    if pinned is None and mixed.worth_trying(measured, built):
        mixed.worst_first = _costliest_first(tables.of(built[base]))
        if found := mixed.run(built[base]):
            built[MIXED] = found
            measured = measure_all()
    if mixed.plan is not None:
        plan.candidates[MIXED], records[MIXED] = mixed.plan, mixed.records
    if device_latency is not None:  # NOTE: after every candidate is built (the mix included), before the decision
        measured = device_latency(measured, built, source)
    layer_tables = _layer_tables(tables, built | analysed, mixed)
    decision = _select(measured, budget, recipe, pinned, layer_tables, mixed)
    analysis = {
        "data": "calibration",
        "samples": tables.samples,
        "seconds": round(tables.seconds, 3),  # 0 when every table came from the cache
        "quantize_seconds": _quantize_seconds(records.get(base, [])),  # all-INT8, calibration included (None: cached)
    }
    explain = explain_report(
        decision=decision, models=measured.models, budget=budget, tables=layer_tables, analysis=analysis
    )
    return Chosen(built, records, measured, decision, explain)


def _layer_tables(tables: LayerTables, candidates: dict[str, Built], mixed: AccuracyAwareStep):
    kept = tuple(mixed.search.keep_float or ()) if mixed.search is not None else ()
    found = {}
    for name, b in candidates.items():
        rows = tables.of(b, kept if name == MIXED else ())
        if rows is not None:
            found[name] = rows
    return found


def _select(measured, budget, recipe, pinned, tables: dict[str, list[LayerNumerics]], mixed) -> Decision:
    try:
        where = device_name(measured.models) or "this host"
        decision = select_candidate(measured.models, budget, recipe.min_speedup, recipe.objective, pinned, where)
    except BudgetError as exc:
        worst = _costliest(tables, mixed)
        if worst:
            exc.message += f". Layers that cost most: {worst}"
        raise
    base = mixed.base
    costliest = _costliest(tables, mixed) if not decision.within_budget.get(base, True) else ""
    if base in measured.models and costliest:
        decision.verdicts[base] += f"; layers that cost most: {costliest}"
    decision.mixed_precision = mixed.to_dict()
    line = mixed.verdict(decision.verdicts.get(MIXED))
    if line:
        decision.verdicts[MIXED] = line
    if line and MIXED not in decision.within_budget and decision.chosen != MIXED:
        decision.reason += f"; {MIXED} {line.split('. ')[0]}"
    return decision


def _costliest(tables: dict[str, list[LayerNumerics]], mixed: AccuracyAwareStep) -> str:
    """Measured where the search ranked layers, else the lowest activation SQNR (marked as such)."""
    if mixed.search is not None and mixed.search.sensitive:
        return mixed.search.layer_costs(3)
    rows = sorted(tables.get(mixed.base, []), key=lambda r: r.sqnr_db)
    return ", ".join(r.describe() for r in rows[:3])


def _costliest_first(rows: list[LayerNumerics] | None) -> tuple[str, ...]:
    """The order in which layers are cut to the search's ranking cap: most SQNR lost at the layer itself first
    (the activation SQNR is cumulative: by it alone every late layer looks worse than the early ones)."""
    return tuple(r.layer for r in sorted(rows or [], key=lambda r: (-r.sqnr_drop_db, r.sqnr_db)))


def _quantize_seconds(base_records: list[PassRecord]) -> float | None:
    """The all-INT8 quantization (calibration included) when it ran in this compile, for scale."""
    times = [r.seconds for r in base_records if not r.cached]
    return round(sum(times), 3) if times else None
