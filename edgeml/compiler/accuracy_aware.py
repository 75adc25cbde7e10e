"""An all-INT8 candidate that misses the accuracy budget → the `int8-mixed` candidate: the same quantization
with a few layers kept in float that meet the budget — the fewest, then swapped for cheaper ones where that
still meets it (edgeml/compiler/mixed_precision_search.py) — or why not.

A target takes part through its `Target.mixed`, a `MixedPrecision` (edgeml/compiler/mixed_precision.py): its all-INT8
base candidate, its INT8 layers by name, and its base plan with named layers kept in float (cpu-ort:
int8-static and QDQ node names, or on transformers int8-dynamic and `quantize_dynamic`'s excluded nodes;
cpu-openvino, npu-openvino: NNCF's int8 and ONNX node names mapped to NNCF's ignored scope). A group of layers
kept in float together names its nodes in `members` (the float head: edgeml/compiler/float_head.py).

The contract, the report and the failure are the same on every target. The search runs when the base was
built and misses the budget, and — unless the precision is pinned to int8-mixed — the base is within
`_SPEED_MARGIN` of the speed gate. A few float layers can make a model faster (the digits CNN's Gemm ran ~7 %
faster in float than as QDQ), but not by much; an INT8 model far slower than float would not ship mixed
either. The mix it finds is measured and selected like every other candidate. Its result is cached by
content, like a pass.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from edgeml.calibration.dataset import Dataset
from edgeml.compiler.build_candidate import Built, build_candidate
from edgeml.compiler.candidate_evaluator import CandidateEvaluator
from edgeml.compiler.content_cache import Blob, ContentCache, cache_key
from edgeml.compiler.measure import FLOAT, Measurements
from edgeml.compiler.mixed_precision import MixedPrecision
from edgeml.compiler.mixed_precision_search import MAX_RANKED, MixedSearch, search_mixed_precision
from edgeml.compiler.passes.base import PassContext
from edgeml.compiler.plan import CandidatePlan
from edgeml.compiler.progress import NullProgress, Progress
from edgeml.compiler.run_passes import PassRecord
from edgeml.compiler.select_candidate import Budget, budget_verdict
from edgeml.compiler.tool_versions import tool_versions
from edgeml.errors import BudgetError

if TYPE_CHECKING:
    from edgeml.targets.target import Target

__all__ = ["MIXED", "AccuracyAwareStep"]
_SEARCH_BUDGET_S = 60.0  # the default search budget for a model under 10 MB (issue 12's goal on 2 cores)
_SEARCH_S_PER_MB = 6.0

MIXED = "int8-mixed"
SEARCH_VERSION = 5  # 3: layers carry their cost; the found mix is cheapened. 4: per-channel cosine, agreement.
# 5: the float head as a group; ranked by the missed floors first
_STEP = "accuracy-aware search (int8-mixed)"
_SPEED_MARGIN = 0.8  # search while the all-INT8 base reaches this fraction of the required speedup
_EVALUATION_TOOLS = ("onnx", "onnxruntime", "numpy")  # the float reference and the metrics


@dataclass
class AccuracyAwareStep:
    """Everything the search needs from the compile; `run` fills in `search`, `records`, `plan`, `skipped`."""

    target: Target
    candidates: dict[str, CandidatePlan]  # the target's plan for this compile, per candidate
    recipe: Any
    prepared: Blob
    source: Built
    evalset: Dataset
    budget: Budget
    ctx: PassContext
    cache: ContentCache
    calibration_digest: str
    threads: int
    progress: Progress
    worst_first: tuple[str, ...] = ()
    search: MixedSearch | None = None
    records: list[PassRecord] = field(default_factory=list)
    plan: Any = None
    skipped: str | None = None

    @property
    def available(self) -> bool:
        return self.target.mixed is not None and self.base_plan is not None

    @property
    def base(self) -> str:
        """The all-INT8 candidate a mix starts from: the target's choice for this plan where it makes one, else
        its fixed base (int8-static where it has no mixed-precision capability)."""
        mixed = self.target.mixed
        return mixed.base_for(self.candidates) if mixed is not None else "int8-static"

    @property
    def search_budget_s(self) -> float:
        """The search's time budget: the recipe's, or by default 60 s for a model under 10 MB and 6 s per MB above
        (MiniLM, 87 MB: ~8.7 min on 2 cores, where ranking its 36 MatMuls alone takes minutes)."""
        given = getattr(self.recipe, "search_budget_s", 0.0) or 0.0
        return given if given > 0 else max(_SEARCH_BUDGET_S, _SEARCH_S_PER_MB * len(self.prepared.data) / 1e6)

    @property
    def max_ranked(self) -> int:
        """How many layers the search measures one by one: the target's figure for its base, else MAX_RANKED."""
        mixed = self.target.mixed
        return (mixed.ranked_for(self.base) if mixed is not None else None) or MAX_RANKED

    @property
    def base_plan(self) -> CandidatePlan | None:
        return self.candidates.get(self.base)

    def worth_trying(self, measured: Measurements, built: dict[str, Built]) -> bool:
        """Auto mode: the base was built, misses the budget, and is near enough the speed gate that a mix
        might ship."""
        models, base = measured.models, self.base
        if not self.available or base not in built or base not in models:
            return False
        if budget_verdict(models[base], models[FLOAT], self.budget) is None:
            return False
        speed_ref = models.get("fp32", models[FLOAT])["latency"]["p50_ms"]
        speedup = speed_ref / models[base]["latency"]["p50_ms"]
        if speedup < _SPEED_MARGIN * self.recipe.min_speedup:
            self.skipped = (
                f"not tried: {base} runs at {speedup:.2f}× float speed on this host (a mix must reach "
                f"{self.recipe.min_speedup:g}×), too slow for a few float layers to make up; pin "
                f"--precision {MIXED} to search anyway"
            )
            return False
        return True

    def run(self, base: Built, required: bool = False) -> Built | None:
        """The mixed candidate meeting the budget, or None (BudgetError when `required`)."""
        self.progress.step(_STEP)
        self.search = self._cached_search(base)
        self.progress.finished(_STEP, self._detail())
        if not self.search.found:
            if required:
                raise BudgetError(
                    f"{MIXED} cannot meet the accuracy budget: {self.search.summary()}",
                    "loosen --max-drop / --min-cosine / --min-agreement, or ship float (--precision fp32); "
                    "`edgeml explain` on a float build shows every layer's numbers",
                )
            return None
        return self._build(self.search.keep_float, records=True)

    def verdict(self, decision_verdict: str | None) -> str:
        """The int8-mixed line of the decision: the selection's verdict plus what the search kept in float."""
        if self.search is None:
            return self.skipped or ""
        if decision_verdict is None:
            return f"not built: {self.search.summary()}"
        return f"{decision_verdict}; {self.search.summary()}"

    def to_dict(self) -> dict[str, Any] | None:
        if self.search is not None:
            return self.search.to_dict()
        return {"skipped": self.skipped} if self.skipped else None

    def _detail(self) -> str:
        s = self.search
        kept = "no mix meets the budget" if not s.found else f"{len(s.keep_float)} layer(s) kept in float"
        return f"{kept}; {len(s.ranking)} ranked, {len(s.tries)} tries, {s.seconds:.1f} s"

    def _cached_search(self, base: Built) -> MixedSearch:
        key = cache_key(
            version=SEARCH_VERSION,
            prepared=self.prepared.sha256,
            base=base.digest,
            source=self.source.digest,
            recipe={k: v for k, v in dataclasses.asdict(self.recipe).items() if k != "precision"},
            calibration=self.calibration_digest,
            evaluation=self.evalset.digest(),
            budget=self.budget.to_dict(),
            worst_first=list(self.worst_first),
            max_ranked=self.max_ranked,
            tools=tool_versions(self._tools()),
        )
        hit = self.cache.get_json("mixed-search", key)
        if hit is not None:
            return MixedSearch.from_dict(hit)
        layers = self._mixed().layers(base, self.prepared.data)
        evaluator = CandidateEvaluator(self.source, self.evalset, self.ctx.scratch, self.threads)
        search = search_mixed_precision(
            base, layers, self._build, evaluator, self.budget, self.worst_first, self.max_ranked,
            self.search_budget_s,
        )  # fmt: skip
        self.cache.put_json("mixed-search", key, search.to_dict())
        return search

    def _tools(self) -> tuple[str, ...]:
        """Whose versions change the search's result: the base's quantizer and lowering, and the evaluation."""
        steps = [*self.base_plan.passes, self.base_plan.lowering]
        return tuple(sorted({*_EVALUATION_TOOLS, *(t for step in steps if step is not None for t in step.tools)}))

    def _build(self, keep_float: tuple[str, ...], records: bool = False) -> Built:
        plan = self._mixed().plan(self.base_plan, tuple(keep_float))
        progress = self.progress if records else NullProgress()
        built, recs = build_candidate(
            self.prepared, plan, self.target.spec, self.ctx, self.cache, progress,
            self.calibration_digest, f"[{MIXED}] ",
        )  # fmt: skip
        if records:
            self.records, self.plan = recs, plan
        return built

    def _mixed(self) -> MixedPrecision:
        if self.target.mixed is None:
            raise TypeError(f"target {self.target.id} has no int8-mixed capability")  # NOTE: `available` guards it
        return self.target.mixed
